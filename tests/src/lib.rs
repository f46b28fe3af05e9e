//! inspector integration tests: see tests/.
