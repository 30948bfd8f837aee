//! Data in and out on the command line (SPEC 13): import with a progress bar, export,
//! backup and restore.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rapport_tools::Entity;

use super::{open, org};
use crate::config::{BackupArgs, Cli, ExportArgs, ImportArgs, PrivacyCommand, RestoreArgs};
use crate::crm::Principal;
use crate::crm::archive;
use crate::crm::export::{Export, ExportFormat};
use crate::crm::import::{self, ImportError, OnMatch, Options};
use crate::store::ImportCounts;

/// `contacts` or `contact`.
pub fn entity(name: &str) -> anyhow::Result<Entity> {
    import::entity_named(name).map_err(anyhow::Error::msg)
}

/// How an import's progress reads: a bar on a terminal, a line every few seconds otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Instant,
    total: u64,
    from: u64,
    quiet: bool,
}

impl Progress {
    fn new(total: u64, from: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {per_sec}  {eta} left  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_position(from);
            bar.reset_eta();
            bar
        });
        Progress { bar, started: Instant::now(), last_line: Instant::now(), total, from, quiet }
    }

    fn step(&mut self, step: import::Step<'_>) {
        match step {
            import::Step::Rows(c) => self.update(c),
            import::Step::Indexing => match &self.bar {
                Some(bar) => bar.set_message("all rows stored; building the indexes"),
                None if !self.quiet => {
                    eprintln!(
                        "All {} rows stored; building the indexes (about half a minute a million rows)",
                        self.total
                    )
                }
                None => {}
            },
        }
    }

    fn update(&mut self, c: &ImportCounts) {
        let done = c.rows_done as u64;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(format!("{} failed", c.failed));
            return;
        }
        if self.quiet || self.last_line.elapsed() < Duration::from_secs(2) {
            return;
        }
        self.last_line = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = (done - self.from.min(done)) as f64 / secs;
        let left = if rate > 0.0 { (self.total.saturating_sub(done)) as f64 / rate } else { 0.0 };
        eprintln!(
            "{done} of {} rows ({}%), {:.0} rows/s, {:.0} s left, {} failed",
            self.total,
            done * 100 / self.total.max(1),
            rate,
            left,
            c.failed
        );
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub async fn import(cli: &Cli, args: &ImportArgs) -> anyhow::Result<()> {
    let store = open(cli).await?;
    let org = org(store.as_ref(), &args.org.org).await?;
    let p = Principal::cli(org);
    if let Some(dir) = &args.all {
        return import_all(store.as_ref(), &p, dir, args.json.json).await;
    }
    let (Some(entity), Some(file)) = (&args.entity, &args.file) else {
        bail!("give ENTITY and FILE, or --all DIR");
    };
    let entity = self::entity(entity)?;
    let map = args.map.iter().map(|m| Options::parse_map(m)).collect::<Result<Vec<_>, _>>()?;
    let ext = file.extension().and_then(|e| e.to_str()).map(str::to_lowercase);
    let options = Options {
        entity,
        map,
        match_on: args.match_on.clone(),
        on_match: OnMatch::parse(&args.on_match)?,
        dry_run: args.dry_run,
        file_name: file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        json_lines: match ext.as_deref() {
            Some("jsonl" | "ndjson") => Some(true),
            Some("csv" | "tsv" | "txt") => Some(false),
            _ => None,
        },
    };
    if !file.is_file() {
        bail!("no file {}: give the path of a CSV or JSON-lines file", file.display());
    }
    let prepared = import::prepare(store.as_ref(), &p, file, None, options).await.map_err(explain)?;
    let quiet = args.json.json;
    if prepared.resumed_from > 0 && !quiet {
        eprintln!(
            "Going on with import {} from row {} of {} (the rows before it were stored by the interrupted run).",
            prepared.import.id, prepared.resumed_from, prepared.import.total_rows
        );
    }
    let unmapped: Vec<String> = prepared.import.report["unmapped"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if !unmapped.is_empty() && !quiet {
        eprintln!(
            "These columns fill no field and are left out: {}. Map one with --map \"COLUMN=FIELD\" (custom.KEY creates a custom field).",
            unmapped.join(", ")
        );
    }
    let mut bar = Progress::new(prepared.import.total_rows as u64, prepared.resumed_from, quiet);
    let outcome = import::run(store.as_ref(), &p, prepared, |s| bar.step(s)).await;
    bar.finish();
    let done = match outcome {
        Ok(i) => i,
        Err(e) => return Err(explain(e)),
    };
    let view = import::view(store.as_ref(), done, 100).await?;
    if let Some(path) = &args.failed_rows {
        let file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
        let i = import::get(store.as_ref(), &p, &view.id).await?;
        import::failed_rows_csv(store.as_ref(), &i, std::io::BufWriter::new(file)).await?.flush()?;
    }
    if args.json.json {
        println!("{}", serde_json::to_string(&view)?);
        return Ok(());
    }
    let verb = if view.dry_run { "Would import" } else { "Imported" };
    println!(
        "{verb} {} rows into {}: {} created, {} updated, {} skipped, {} failed{}.",
        view.rows_done,
        entity.plural(),
        view.created,
        view.updated,
        view.skipped,
        view.failed,
        if view.companies_created > 0 {
            format!(", {} companies created", view.companies_created)
        } else {
            String::new()
        }
    );
    for f in view.failures.iter().take(20) {
        println!("  line {}: {}", f.line, f.reason);
    }
    if view.failed > 20 {
        println!("  … and {} more (--failed-rows FILE writes them all as CSV)", view.failed - 20);
    }
    if !view.dry_run {
        println!("Import {}; undo it whole with: rapport changes revert --request-id {}", view.id, view.request_id);
    }
    Ok(())
}

async fn import_all(
    store: &crate::store::Store,
    p: &Principal,
    dir: &std::path::Path,
    quiet: bool,
) -> anyhow::Result<()> {
    let report = archive::import_all(store, p, dir, |e, n| {
        if !quiet && n % 10_000 == 0 {
            eprintln!("{n} {}", e.plural());
        }
    })
    .await?;
    if quiet {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    for (plural, n) in &report.created {
        println!("{n} {plural} restored");
    }
    println!(
        "{} custom fields and {} pipelines created, {} pipelines updated; {} users matched by email, {} users' records given to the owner; {} failed.",
        report.custom_fields_created,
        report.pipelines_created,
        report.pipelines_updated,
        report.users_matched,
        report.users_to_owner,
        report.failed
    );
    for f in report.failures.iter().take(20) {
        println!("  {} line {}: {}", f.file, f.line, f.reason);
    }
    println!("Undo it whole with: rapport changes revert --request-id {}", report.request_id);
    Ok(())
}

fn explain(e: ImportError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn export(cli: &Cli, args: &ExportArgs) -> anyhow::Result<()> {
    let store = open(cli).await?;
    let org = org(store.as_ref(), &args.org.org).await?;
    let p = Principal::cli(org);
    if args.all {
        let summary = archive::export_all(store.as_ref(), &p, &args.out).await?;
        if args.json.json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            for (plural, n) in &summary.records {
                println!("{n} {plural}");
            }
            println!(
                "{} custom fields, {} pipelines, {} users. Wrote {}; bring it back with: rapport import --all {}",
                summary.custom_fields, summary.pipelines, summary.users, summary.dir, summary.dir
            );
        }
        return Ok(());
    }
    let format = ExportFormat::parse(&args.format)?;
    let entities: Vec<Entity> = if args.entity.is_empty() {
        Entity::ALL.to_vec()
    } else {
        args.entity.iter().map(|e| entity(e)).collect::<Result<_, _>>()?
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut written = Vec::new();
    for e in entities {
        let path = args.out.join(format!("{}.{}", e.plural(), format.extension()));
        let file = std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let mut export = Export::new(store.as_ref(), &p, e, format, None, &[]).await?;
        while let Some(bytes) = export.next(store.as_ref(), &p).await? {
            out.write_all(&bytes)?;
        }
        out.flush()?;
        written.push(
            serde_json::json!({ "entity": e.plural(), "file": path.display().to_string(), "records": export.rows }),
        );
        if !args.json.json {
            println!("{} {} to {}", export.rows, e.plural(), path.display());
        }
    }
    if args.json.json {
        println!("{}", serde_json::Value::Array(written));
    }
    Ok(())
}

pub async fn backup(cli: &Cli, args: &BackupArgs) -> anyhow::Result<()> {
    let store = open(cli).await?;
    let started = Instant::now();
    let bytes = store.backup(&args.file).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.json.json {
        println!(
            "{}",
            serde_json::json!({ "file": args.file.display().to_string(), "bytes": bytes, "ms": started.elapsed().as_millis() as u64 })
        );
    } else {
        println!(
            "Wrote a backup of {} bytes to {} in {:.1} s.",
            bytes,
            args.file.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

pub async fn restore(cli: &Cli, args: &RestoreArgs) -> anyhow::Result<()> {
    let target = crate::store::sqlite_path(&cli.database_url).context(
        "restore works on SQLite databases; for PostgreSQL use pg_restore (see the README's operations section)",
    )?;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("restore replaces {}; add --yes to confirm", target.display());
        }
        eprint!("Replace the database {} with {}? Type yes: ", target.display(), args.file.display());
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            bail!("nothing restored");
        }
    }
    crate::store::restore_sqlite(&args.file, &target).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Upgrades an older backup's schema, and proves it opens.
    open(cli).await?;
    println!("Restored {} into {}. Start the server with `rapport serve`.", args.file.display(), target.display());
    Ok(())
}

pub async fn privacy(cli: &Cli, cmd: &PrivacyCommand) -> anyhow::Result<()> {
    match cmd {
        PrivacyCommand::Export { org: o, email } => {
            let store = open(cli).await?;
            let p = Principal::cli(org(store.as_ref(), &o.org).await?);
            let data = crate::crm::privacy::export(store.as_ref(), &p, email).await?;
            println!("{}", serde_json::to_string_pretty(&data)?);
            Ok(())
        }
        PrivacyCommand::Erase { org: o, email, yes, json } => {
            let store = open(cli).await?;
            let p = Principal::cli(org(store.as_ref(), &o.org).await?);
            if !yes {
                if !std::io::stdin().is_terminal() {
                    bail!("erasing deletes {email}'s records for good; add --yes to confirm");
                }
                eprint!("Erase everything held about {email} for good? Type yes: ");
                std::io::stderr().flush()?;
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if answer.trim() != "yes" {
                    bail!("nothing erased");
                }
            }
            let done = crate::crm::privacy::erase(store.as_ref(), &p, email).await?;
            if json.json {
                println!("{}", serde_json::to_string(&done)?);
            } else {
                let e = &done.erased;
                println!(
                    "Erased {}: {} contacts, {} notes, {} tasks deleted; values erased in {} change entries, {} webhook deliveries, {} stored answers. Backups taken before now still hold them.",
                    done.email, e.contacts, e.notes, e.tasks, e.changes, e.webhook_deliveries, e.idempotency_answers
                );
            }
            Ok(())
        }
    }
}
