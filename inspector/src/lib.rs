//! inspector: shows, from the kernel's point of view, how a container really
//! starts and stops.
//!
//! This library holds what the subcommands share; each subcommand is a file
//! of the binary's `cmd/` folder, and `main.rs` only parses and dispatches.
//!
//! - [`probe`] loads the eBPF probe and reads its ring buffer;
//! - [`event`] turns the probe's records into [`event::Event`]s (the JSON Lines schema);
//! - [`output`] writes them as JSON Lines or strace-like text;
//! - [`escape`] makes the strings of traced processes safe to print;
//! - [`timeline`] turns events into per-container lifecycle timelines;
//! - [`golden`] records, checks and compares golden syscall sequences;
//! - [`export`] sends finished timelines out of the host (`inspector agent`):
//!   Prometheus metrics, OpenTelemetry traces, JSON Lines;
//! - [`tui`] is the live terminal UI (`inspector tui`, `inspector run --tui`);
//! - [`capture`] keeps what the probe saw while something ran, until it settled;
//! - [`launch`] prepares and drives a container for `inspector run`;
//! - [`version`] is what `--version` says: the commit and the probe's build.

pub mod capture;
pub mod escape;
pub mod event;
pub mod export;
pub mod golden;
pub mod host;
pub mod launch;
pub mod names;
pub mod output;
pub mod probe;
pub mod timeline;
pub mod track;
pub mod tui;
pub mod version;
