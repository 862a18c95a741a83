"""Ray Serve layer of emergence: the HTTP API (`serving.app`) and its custom metrics
(`serving.metrics`). Importing this package starts nothing; `serving.app:app` is the Serve
import path, `serving.app:build_app` the application builder."""
