// The queue follows the server's events: on each, the queue is fetched again and swapped in
// (then handed to htmx, so its one-click forms work). Plain fetch and no timers on this path:
// a browser slows the timers of a page in the background, and a care team's console often is.
(function () {
  var queue = document.getElementById("queue");
  if (!queue || !window.EventSource) return;
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(queue.getAttribute("data-src"), {credentials: "same-origin",
                                            headers: {"HX-Request": "true"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) { queue.innerHTML = html; if (window.htmx) window.htmx.process(queue); }
      })
      .finally(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  var events = new EventSource(queue.getAttribute("data-events"));
  events.addEventListener("changed", refresh);
})();

// The queue's ages tick, and a critical alert that nobody has taken sounds until someone does.
(function () {
  function minutes(raised) { return Math.max(0, Math.floor((Date.now() - Date.parse(raised)) / 60000)); }
  function words(m) {
    if (m < 60) return m + " min";
    var h = Math.floor(m / 60); if (h >= 48) return Math.floor(h / 24) + " days";
    var r = m % 60; return h + " h " + (r < 10 ? "0" : "") + r + " min";
  }
  var audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.2; o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.3);
    } catch (e) { /* no sound on this device: the words and colours still say it */ }
  }
  setInterval(function () {
    document.querySelectorAll(".age[data-raised]").forEach(function (el) {
      el.textContent = words(minutes(el.getAttribute("data-raised")));
    });
    var untaken = document.querySelector('li.alert[data-severity="critical"][data-taken="no"]');
    document.body.classList.toggle("sounding", !!untaken);
  }, 1000);
  setInterval(function () { if (document.body.classList.contains("sounding")) beep(); }, 3000);
})();
