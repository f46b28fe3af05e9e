//! inspector: shows, from the kernel's point of view, how a container really
//! starts and stops.
//!
//! - [`probe`] loads the eBPF probe and reads its ring buffer;
//! - [`event`] turns the probe's records into [`event::Event`]s (the JSON Lines schema);
//! - [`output`] writes them as JSON Lines or strace-like text;
//! - [`escape`] makes the strings of traced processes safe to print;
//! - [`timeline`] turns events into per-container lifecycle timelines;
//! - [`trace`] is the `inspector trace` command;
//! - [`golden`] records, checks and compares golden syscall sequences;
//! - [`tui`] is the `inspector tui` command, the live terminal UI;
//! - [`capture`] keeps what the probe saw while something ran, until it settled;
//! - [`launch`] prepares and drives a container for `inspector run`.

pub mod btf;
pub mod capture;
pub mod escape;
pub mod event;
pub mod golden;
pub mod host;
pub mod launch;
pub mod names;
pub mod offsets;
pub mod output;
pub mod prereq;
pub mod probe;
pub mod timeline;
pub mod trace;
pub mod track;
pub mod tui;
