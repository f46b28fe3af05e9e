#![no_std]
// Empty on purpose: this library target only exists so that `inspector` can name the
// probe crate as a build dependency; the probe itself is the `inspector` binary target.
