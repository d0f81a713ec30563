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
