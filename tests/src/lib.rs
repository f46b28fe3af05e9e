//! Helpers for inspector's integration tests (`tests/tests/*.rs`), which drive
//! the real `inspector` and `inspector-runtime` binaries against the real
//! kernel, Docker engine and runc.
//!
//! - [`require`]: what a test needs ([`Need`]) and the one rule for a missing
//!   prerequisite: skip with a printed reason outside CI, fail loudly in CI;
//!   [`probe_test`] checks a probe test's needs and holds the probe lock.
//! - [`paths`]: the workspace and the binaries under test.
//! - [`scratch`]: [`TempDir`], a scratch directory removed on drop, and a
//!   busybox root filesystem to fill one with.
//! - [`docker`]: the Docker engine and the test image.
//! - [`engines`]: podman, containerd's ctr, a runtime run directly, and the
//!   runtimes each drives (runc, inspector-runtime, youki, crun).
//! - [`probe`]: the probe as the kernel shows it: loaded programs, attached
//!   links, the keeper that holds them after a run.
//! - [`trace`]: `inspector trace` in the background ([`Tracer`]) and what it
//!   recorded ([`Trace`]).
//! - [`tmux`]: the TUI in a real terminal ([`TmuxSession`]).
//! - [`hostile`]: another local user (`nobody`) and a host made as weak as
//!   many are, for the attack tests.
//! - [`runtime`]: bundles and private state roots for `inspector-runtime`.
//! - [`vm`]: Debian 12's kernel booted under qemu, and what its checks printed.
//! - [`fleet`]: `inspector agent` in the background, a real Prometheus
//!   scraping it, and an OTLP/HTTP receiver.
//!
//! The crate root re-exports every helper but those of [`runtime`],
//! [`engines`], [`fleet`] and [`vm`], so that a test names them `tests::Tracer`, `tests::probe_test`.

pub mod docker;
pub mod engines;
pub mod fleet;
pub mod hostile;
pub mod paths;
pub mod probe;
pub mod require;
pub mod runtime;
pub mod scratch;
pub mod tmux;
pub mod trace;
pub mod vm;

pub use docker::*;
pub use hostile::*;
pub use paths::*;
pub use probe::*;
pub use require::*;
pub use scratch::*;
pub use tmux::*;
pub use trace::*;
