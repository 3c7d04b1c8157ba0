//! The command line: argument definitions (clap) and the commands that need no server.

use std::io::{self, BufRead, Write};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use serde_json::value::RawValue;

use std::path::PathBuf;

use crate::config::{DatabaseArgs, LogArgs, ServeArgs};
use crate::pattern::{self, TestOutcome};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A self-hosted event router in the class of Amazon EventBridge"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the router: the REST API, ingest and rule matching.
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Measure the whole router under load: events/s acknowledged, deliveries/s, latencies.
    Bench(crate::bench::BenchArgs),
    /// The key that seals stored secrets.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Rules as code.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Tools for the event pattern language.
    Pattern {
        #[command(subcommand)]
        command: PatternCommand,
    },
    /// Tools for event schemas.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Infer JSON Schemas (draft 2020-12) from events.
    ///
    /// Reads JSON Lines on standard input (or from FILEs). Each line is an event (an object with
    /// `source`, `detail-type` and `detail`, as stored or as posted); one line is written per event
    /// type, sorted: `{"source": …, "detail_type": …, "samples": N, "schema": {…}}`. With
    /// --detail, each line is a detail and one line `{"samples": N, "schema": {…}}` is written.
    /// A line that is not such an object is reported on standard error with its number and
    /// skipped; the exit status is then 1.
    Infer(SchemaInfer),
}

#[derive(Debug, Args)]
pub struct SchemaInfer {
    /// Each line is an event's detail, not an event.
    #[arg(long)]
    pub detail: bool,
    /// Files of JSON Lines (standard input without any).
    pub files: Vec<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (it is shown only this once).
    Create {
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// What the token may do: `admin` (everything), `publish` (post events) or `read`
        /// (GET routes and the pattern tester).
        #[arg(long, default_value = "admin", value_parser = crate::auth::Scope::parse_arg)]
        scope: crate::auth::Scope,
        /// Limit the token to this bus (repeat for several); without it, every bus.
        #[arg(long = "bus", value_name = "BUS")]
        buses: Vec<String>,
        /// Make an AWS access key pair for EventBridge's API (SigV4) instead of a bearer
        /// token: prints `AWS_ACCESS_KEY_ID=…` and `AWS_SECRET_ACCESS_KEY=…`.
        #[arg(long)]
        aws: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Seal every stored secret with a new key, in one transaction, and make it the key: the
    /// key file is replaced, or (with SWITCHYARD_SECRET_KEY) the new key is printed to set in
    /// its place. Restart every router process afterwards.
    Rotate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Make the rules in the database match the rule files in DIR (.json, .yaml, .yml).
    Apply {
        /// The folder of rule files.
        dir: PathBuf,
        /// Also delete rules (on any bus) that no file defines.
        #[arg(long)]
        prune: bool,
        /// Print what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PatternCommand {
    /// Test patterns against events.
    ///
    /// Without options: reads JSON Lines on standard input, each `{"pattern": ..., "event": ...}`,
    /// and writes one line per input line: `{"result": true}`, `{"result": false}` or
    /// `{"error": "<reason>"}`. With --pattern and --event: tests one case and exits 0 on a match,
    /// 1 on no match, 2 on an invalid pattern and 3 on an invalid event (reason on standard error).
    Test(PatternTest),
}

#[derive(Debug, Args)]
pub struct PatternTest {
    /// The pattern: a file name, or the JSON text itself.
    #[arg(long, requires = "event")]
    pub pattern: Option<String>,
    /// The event: a file name, or the JSON text itself.
    #[arg(long, requires = "pattern")]
    pub event: Option<String>,
}

/// Exit status of `pattern test --pattern … --event …`.
pub fn exit_code(outcome: &TestOutcome) -> u8 {
    match outcome {
        TestOutcome::Match => 0,
        TestOutcome::NoMatch => 1,
        TestOutcome::InvalidPattern(_) => 2,
        TestOutcome::InvalidEvent(_) => 3,
    }
}

/// One answer line of `pattern test` over JSON Lines.
fn answer_line(outcome: &TestOutcome) -> serde_json::Value {
    match outcome {
        TestOutcome::Match => serde_json::json!({"result": true}),
        TestOutcome::NoMatch => serde_json::json!({"result": false}),
        TestOutcome::InvalidPattern(error) => serde_json::json!({"error": error.reason}),
        TestOutcome::InvalidEvent(error) => serde_json::json!({"error": error.to_string()}),
    }
}

#[derive(Deserialize)]
struct TestLine<'a> {
    #[serde(borrow)]
    pattern: &'a RawValue,
    #[serde(borrow)]
    event: &'a RawValue,
}

/// `pattern test` over JSON Lines: one answer line per input line, never stopping at a bad one.
pub fn test_pattern_lines(input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    for line in input.split(b'\n') {
        let mut line = line?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let answer = match std::str::from_utf8(&line) {
            Err(_) => serde_json::json!({"error": "line is not valid UTF-8"}),
            Ok(text) => match serde_json::from_str::<TestLine<'_>>(text) {
                Ok(case) => answer_line(&pattern::test(
                    case.pattern.get(),
                    case.event.get().as_bytes(),
                )),
                Err(e) => serde_json::json!({
                    "error": format!("line is not a JSON object with \"pattern\" and \"event\": {e}")
                }),
            },
        };
        serde_json::to_writer(&mut output, &answer)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    Ok(())
}

/// `schema infer` over JSON Lines (`detail`: each line is a detail, else an event): writes the
/// schema of each event type to `output` and each refused line to `errors`; returns how many
/// lines were refused.
pub fn infer_schema_lines(
    input: impl BufRead,
    mut output: impl Write,
    mut errors: impl Write,
    detail: bool,
) -> io::Result<usize> {
    use crate::schema::infer::Inferrer;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    struct Event {
        source: String,
        #[serde(rename = "detail-type")]
        detail_type: String,
        detail: serde_json::Value,
    }
    let mut types: BTreeMap<(String, String), Inferrer> = BTreeMap::new();
    let mut refused = 0;
    for (index, line) in input.split(b'\n').enumerate() {
        let line = line?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let parsed = if detail {
            serde_json::from_str::<serde_json::Value>(text)
                .map(|value| ((String::new(), String::new()), value))
        } else {
            serde_json::from_str::<Event>(text)
                .map(|event| ((event.source, event.detail_type), event.detail))
        };
        match parsed {
            Ok((key, value)) => types.entry(key).or_default().add(&value),
            Err(error) => {
                refused += 1;
                let what = if detail {
                    "is not JSON"
                } else {
                    "is not an event with source, detail-type and detail"
                };
                writeln!(errors, "line {}: {what}: {error}", index + 1)?;
            }
        }
    }
    for ((source, detail_type), inferrer) in types {
        let line = if detail {
            serde_json::json!({"samples": inferrer.samples(), "schema": inferrer.schema()})
        } else {
            serde_json::json!({"source": source, "detail_type": detail_type,
                               "samples": inferrer.samples(), "schema": inferrer.schema()})
        };
        serde_json::to_writer(&mut output, &line)?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(refused)
}

/// Reads a `FILE_OR_JSON` argument: the file's contents if such a file exists, else the text.
pub fn file_or_json(argument: &str) -> io::Result<String> {
    let path = std::path::Path::new(argument);
    if !argument.trim_start().starts_with(['{', '[', '"']) && path.is_file() {
        return std::fs::read_to_string(path);
    }
    Ok(argument.to_owned())
}
