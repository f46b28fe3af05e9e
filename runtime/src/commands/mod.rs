//! runc's commands, one file each, named like the command: what
//! `inspector-runtime <command>` does once main.rs has parsed its arguments.

pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
