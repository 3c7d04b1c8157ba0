use std::io;
use std::process::ExitCode;

use clap::Parser;
use switchyard::cli::{self, Cli, Command, PatternCommand};

fn main() -> ExitCode {
    let args = Cli::parse();
    match args.command {
        Command::Pattern {
            command: PatternCommand::Test(test),
        } => match (test.pattern, test.event) {
            (Some(pattern), Some(event)) => {
                let (pattern, event) =
                    match (cli::file_or_json(&pattern), cli::file_or_json(&event)) {
                        (Ok(p), Ok(e)) => (p, e),
                        (Err(e), _) | (_, Err(e)) => {
                            eprintln!("switchyard: cannot read input: {e}");
                            return ExitCode::from(3);
                        }
                    };
                let outcome = cli::test_pattern(&pattern, &event);
                match &outcome {
                    cli::TestOutcome::InvalidPattern(reason) => {
                        eprintln!("invalid pattern: {reason}")
                    }
                    cli::TestOutcome::InvalidEvent(reason) => eprintln!("invalid event: {reason}"),
                    _ => {}
                }
                ExitCode::from(outcome.exit_code())
            }
            _ => match cli::test_pattern_lines(io::stdin().lock(), io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("switchyard: {e}");
                    ExitCode::FAILURE
                }
            },
        },
    }
}
