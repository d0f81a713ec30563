"""The application layer: the command line, the pipeline's wiring, health and metrics, the
embedded broker and the demo. It sits on top: it imports the stages (`ingest`, `detect`,
`alerts`) and the core (`telecare.*`), and nothing below imports it (checked by
`lint-imports`, see `.importlinter`)."""
