//! `inspector timeline`: per container, the phases of its life, the chain
//! of processes and every step, from a recording or standard input
//! (the library's `timeline/` builds them).

use std::{io::Write, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use inspector::timeline::{Builder, ContainerTimeline, perfetto, reader, render, why};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimelineFormat {
    /// A waterfall of phases, the chain of roles, the steps.
    Text,
    /// One JSON object per container per line (docs/timeline.md).
    Json,
    /// A Chrome trace file for the Perfetto UI (ui.perfetto.dev) or chrome://tracing.
    Perfetto,
}

#[derive(clap::Args)]
pub struct TimelineArgs {
    /// The recording to read (default: standard input).
    file: Option<PathBuf>,
    /// Only the container whose id starts with this.
    #[arg(long, value_name = "ID")]
    container: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: TimelineFormat,
    /// Text: phases and chain only, without every step.
    #[arg(long)]
    brief: bool,
    /// Where the time went: each container's critical path, from its
    /// client's exec to its entrypoint's, and the causes that took most of
    /// it (a recording made with `inspector trace --sched`).
    #[arg(long)]
    why: bool,
}

pub fn run(args: TimelineArgs) -> anyhow::Result<ExitCode> {
    let input: Box<dyn std::io::Read> = match &args.file {
        Some(path) => Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let wanted = |t: &ContainerTimeline| {
        args.container
            .as_deref()
            .is_none_or(|prefix| t.id.starts_with(prefix))
    };
    // Text and JSON are written as each container's life ends, so memory
    // follows the containers alive; a Perfetto document is written whole.
    let mut kept = Vec::new();
    let mut shown = 0usize;
    let mut emit = |mut t: ContainerTimeline, out: &mut dyn Write| -> std::io::Result<()> {
        if !wanted(&t) {
            return Ok(());
        }
        shown += 1;
        match args.format {
            TimelineFormat::Text => writeln!(out, "{}", render::text(&t, !args.brief)),
            TimelineFormat::Json => {
                t.fill_details();
                inspector::escape::to_json_writer(&mut *out, &t)?;
                writeln!(out)
            }
            TimelineFormat::Perfetto => {
                kept.push(t);
                Ok(())
            }
        }
    };
    let mut builder = Builder::new();
    let mut write_error = None;
    let mut sched = args.why.then(why::Sched::default);
    let explained = |t: &mut ContainerTimeline, sched: &Option<why::Sched>| {
        if let Some(sched) = sched {
            t.why = sched.explain(t);
        }
    };
    let each = |e: inspector::event::Event| {
        if let Some(sched) = &mut sched {
            sched.push(&e);
        }
        builder.push(e);
        for mut t in builder.take_finished() {
            explained(&mut t, &sched);
            if let Err(err) = emit(t, &mut out) {
                write_error.get_or_insert(err);
            }
        }
    };
    // The path needs every thread's making.
    let summary = if args.why {
        reader::for_each_path_event(input, each)?
    } else {
        reader::for_each_timeline_event(input, each)?
    };
    if let Some(err) = write_error {
        return Err(err.into());
    }
    for warning in summary.warnings() {
        eprintln!("inspector: {warning}");
    }
    let stats = builder.stats();
    for mut t in builder.finish() {
        explained(&mut t, &sched);
        emit(t, &mut out)?;
    }
    if let Some(sched) = &sched
        && sched.records == 0
    {
        eprintln!(
            "inspector: --why: the recording has no scheduler records; record it with \
             `inspector trace --sched --format jsonl -o FILE`"
        );
    }
    if args.format == TimelineFormat::Perfetto {
        inspector::escape::to_json_writer(&mut out, &perfetto::document(&kept))?;
        writeln!(out)?;
    }
    if stats.lost > 0 {
        eprintln!(
            "inspector: the recording lost {} events; timelines may miss steps",
            stats.lost
        );
    }
    eprintln!(
        "inspector: {} events, {shown} containers, {} container events unattributed",
        stats.events, stats.unattributed
    );
    if shown == 0 {
        match &args.container {
            Some(prefix) => {
                anyhow::bail!("no container whose id starts with {prefix:?} in the recording")
            }
            None => eprintln!("inspector: no container in the recording"),
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
