//! The lifecycle timeline: events turned into a process tree and, per
//! container, the roles that took part, the phases of its life and the key
//! steps, each attributed to its container. Its stages, in the order events
//! go through them:
//!
//! - [`reader`]: a recording (JSON Lines) read back into events, checked for
//!   time order: `reader/mod.rs` cuts lines, `reader/fields.rs` lists an
//!   event's fields once, `reader/scan.rs` scans a line into them.
//! - [`role`]: who a process is in a container's chain (client, shim,
//!   runtime, entrypoint...), from its command line; [`engine`]: which
//!   engine and runtime made a container; [`phase`]: the phases of a
//!   container's life and the milestones that cut them.
//! - [`builder`]: the correlation, events in order to timelines
//!   (`builder/live.rs`: the containers still in progress); [`running`]: the
//!   containers already running when tracing starts, seeded into it.
//! - [`model`]: what a timeline is ([`ContainerTimeline`], [`ChainLink`],
//!   [`Step`]), as `--format json` writes it.
//! - [`why`]: where a container's time went (the critical path, from the
//!   scheduler's records); [`timing`]: its times to compare, medians of
//!   runs and the differences between two.
//! - The views: [`render`] (text), [`perfetto`] (Chrome trace JSON), and
//!   [`present`], what they and the TUI show alike (short ids, commands,
//!   durations, exits).

pub mod builder;
pub mod engine;
pub mod model;
pub mod perfetto;
pub mod phase;
pub mod present;
pub mod reader;
pub mod render;
pub mod role;
#[cfg(test)]
mod round_trip;
pub mod running;
pub mod timing;
pub mod why;

pub use self::{
    builder::{Builder, Limits, Stats, live, wall_clock},
    engine::Engine,
    model::{ChainLink, ContainerTimeline, Failure, Message, Step, TIMELINE_SCHEMA_VERSION},
    phase::{Milestones, Phase, PhaseSpan},
    present::short_id,
    role::Role,
};
