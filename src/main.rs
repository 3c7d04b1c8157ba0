use std::future::Future;
use std::io;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use switchyard::app::Application;
use switchyard::cli::{
    self, Cli, Command, PatternCommand, RulesCommand, SchemaCommand, SecretsCommand, TokenCommand,
};
use switchyard::config::{Database, DatabaseArgs, EMBEDDED_DATABASE};
use switchyard::pattern::{self, TestOutcome};
use switchyard::store::embedded::{self, EmbeddedOptions, EmbeddedPostgres};
use switchyard::{audit, auth, otel, rules_files, secrets, store, telemetry};

/// mimalloc instead of glibc's malloc: under load glibc's malloc and free (consolidating and
/// unlinking chunks) were ~15% of the router's CPU (BENCHMARKS.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Cli::parse();
    if let Command::Pattern {
        command: PatternCommand::Test(test),
    } = args.command
    {
        return pattern_test(test);
    }
    if let Command::Schema {
        command: SchemaCommand::Infer(infer),
    } = args.command
    {
        return schema_infer(infer);
    }
    let filter = match args.log.validate() {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("switchyard: {error}");
            return ExitCode::from(2);
        }
    };
    // Spans are exported by the router only, when an OTLP endpoint is configured.
    let exporter = match &args.command {
        Command::Serve(_) => match otel::init() {
            Ok(provider) => provider,
            Err(error) => {
                eprintln!("switchyard: {error}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    telemetry::init(filter, args.log.log_format, otel::tracer());
    let code = match run(args.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("switchyard: {error:#}");
            ExitCode::FAILURE
        }
    };
    if let Some(provider) = exporter {
        otel::shutdown(&provider);
    }
    code
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(serve) => {
            let config = serve.validate()?;
            let (_cluster, options) = open_database(&config.database, false)?;
            runtime()?.block_on(async {
                let mut app = Application::build(config, options).await?;
                if let Some(token) = app.take_generated_token() {
                    eprintln!(
                        "\nswitchyard: generated the first admin API token (shown only now; store it safely):\n\n    {token}\n"
                    );
                }
                app.run_until_stopped(shutdown_signal()).await?;
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        Command::Migrate(database) => with_pool(&database, |pool| async move {
            store::migrate(&pool).await?;
            eprintln!("switchyard: migrations applied");
            Ok(ExitCode::SUCCESS)
        }),
        Command::Token {
            command:
                TokenCommand::Create {
                    name,
                    scope,
                    buses,
                    aws,
                    database,
                },
        } => {
            let buses = (!buses.is_empty()).then_some(buses);
            let kind = if aws {
                auth::TokenKind::AwsAccessKey
            } else {
                auth::TokenKind::Bearer
            };
            let new = auth::NewToken::check(name, scope.as_str(), buses, kind)
                .map_err(|e| anyhow::anyhow!("the token is not valid: {e}"))?;
            let source = database.key_source().map_err(anyhow::Error::msg)?;
            with_pool(&database, |pool| async move {
                store::migrate(&pool).await?;
                let sealer = secrets::open_sealer(&pool, &source).await?;
                let actor = audit::Actor::command("token create");
                match auth::issue_token(&pool, &sealer, &actor, &new).await?.1 {
                    auth::Issued::Bearer(token) => println!("{token}"),
                    auth::Issued::AccessKey { id, secret } => {
                        println!("AWS_ACCESS_KEY_ID={id}\nAWS_SECRET_ACCESS_KEY={secret}")
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Secrets {
            command: SecretsCommand::Rotate { database },
        } => {
            let source = database.key_source().map_err(anyhow::Error::msg)?;
            with_pool(&database, |pool| async move {
                store::migrate(&pool).await?;
                let current = secrets::open_sealer(&pool, &source).await?;
                let key = secrets::new_key_text();
                let next = secrets::Sealer::new(&secrets::KeySource::parse_key(&key)?);
                // The new key is kept before the database depends on it.
                let staged = match &source {
                    secrets::KeySource::File(path) => {
                        let staged = path.with_extension("next");
                        let _ = std::fs::remove_file(&staged);
                        secrets::write_key_file(&staged, &key)?;
                        Some((staged, path.clone()))
                    }
                    secrets::KeySource::Given(_) => None,
                };
                let resealed = secrets::rotate(&pool, &current, &next).await;
                let resealed = match (resealed, &staged) {
                    (Ok(n), _) => n,
                    (Err(e), Some((staged, _))) => {
                        let _ = std::fs::remove_file(staged);
                        return Err(e.into());
                    }
                    (Err(e), None) => return Err(e.into()),
                };
                match staged {
                    Some((staged, path)) => {
                        std::fs::rename(&staged, &path).with_context(|| {
                            format!(
                                "the secrets are sealed with the key in {}; move it to {}",
                                staged.display(),
                                path.display()
                            )
                        })?;
                        eprintln!(
                            "switchyard: {resealed} secret(s) sealed with a new key (id {}), now in {}; restart every router process",
                            next.key_id(),
                            path.display()
                        );
                    }
                    None => {
                        println!("SWITCHYARD_SECRET_KEY={key}");
                        eprintln!(
                            "switchyard: {resealed} secret(s) sealed with a new key (id {}); set SWITCHYARD_SECRET_KEY to it and restart every router process",
                            next.key_id()
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Rules {
            command:
                RulesCommand::Apply {
                    dir,
                    prune,
                    dry_run,
                    database,
                },
        } => {
            let files = rules_files::load_dir(&dir)?;
            with_pool(&database, |pool| async move {
                store::migrate(&pool).await?;
                let actor = audit::Actor::command("rules apply");
                let plan = rules_files::apply(&pool, &actor, &files, prune, dry_run).await?;
                let verb = if dry_run { "would " } else { "" };
                for change in &plan.changes {
                    println!("{verb}{change}");
                }
                println!(
                    "{} change(s) {}, {} rule(s) unchanged",
                    plan.changes.len(),
                    if dry_run { "planned" } else { "applied" },
                    plan.unchanged
                );
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Bench(mut bench) => {
            let json = bench.json;
            // The routers it starts share one database: with no DATABASE_URL, the local cluster
            // is started here (on the main thread, so it stops with us) and given to each.
            let _cluster = if bench.router.is_none()
                && !bench.sink_only
                && bench.database.database_url.is_none()
            {
                let database = bench.database.validate().map_err(anyhow::Error::msg)?;
                let (cluster, _) = open_database(&database, false)?;
                bench.database.database_url = cluster.as_ref().map(|c| c.url(EMBEDDED_DATABASE));
                cluster
            } else {
                None
            };
            let report = runtime()?.block_on(switchyard::bench::run(bench))?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", switchyard::bench::table(&report));
            }
            // The numbers only count if nothing was lost or sent twice.
            Ok(if report.lost == 0 && report.duplicates == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "switchyard bench: {} lost, {} duplicates",
                    report.lost, report.duplicates
                );
                ExitCode::FAILURE
            })
        }
        Command::Pattern { .. } | Command::Schema { .. } => {
            unreachable!("handled before logging is set up")
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Connection options for the configured database. With no DATABASE_URL this starts the local
/// cluster, on this (the main) thread: the cluster stops when that thread's process ends.
/// `share_running`: an admin command uses the cluster a running router started on this folder.
fn open_database(
    database: &Database,
    share_running: bool,
) -> anyhow::Result<(Option<EmbeddedPostgres>, sqlx::postgres::PgConnectOptions)> {
    match database {
        Database::Url(options) => Ok((None, (**options).clone())),
        Database::Embedded { cluster_dir } => {
            let cluster = EmbeddedPostgres::start(&EmbeddedOptions {
                data_dir: cluster_dir.clone(),
                durable: true,
                share_running,
            })
            .context("starting the local PostgreSQL")?;
            runtime()?
                .block_on(embedded::ensure_database(
                    &cluster.connect_options("postgres"),
                    EMBEDDED_DATABASE,
                ))
                .context("creating the database")?;
            tracing::info!(dir = %cluster_dir.display(), "local PostgreSQL ready");
            let options = cluster.connect_options(EMBEDDED_DATABASE);
            Ok((Some(cluster), options))
        }
    }
}

fn with_pool<F, Fut>(database: &DatabaseArgs, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(sqlx::PgPool) -> Fut,
    Fut: Future<Output = anyhow::Result<ExitCode>>,
{
    let database = database.validate().map_err(anyhow::Error::msg)?;
    let (_cluster, options) = open_database(&database, true)?;
    runtime()?.block_on(async {
        let pool = store::connect(options, 2)
            .await
            .context("connecting to the database")?;
        let result = f(pool.clone()).await;
        pool.close().await;
        result
    })
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is called, not
/// when it is first polled: the router says "listening" before the task that waits on this has
/// run, and a signal in between would otherwise end the process without draining.
fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = [SignalKind::interrupt(), SignalKind::terminate()].map(signal);
    async move {
        let [interrupt, terminate] = handlers.map(|handler| async move {
            match handler {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        });
        tokio::select! {
            () = interrupt => {},
            () = terminate => {},
        }
        tracing::info!("shutting down");
    }
}

fn pattern_test(test: cli::PatternTest) -> ExitCode {
    match (test.pattern, test.event) {
        (Some(pattern), Some(event)) => {
            let (pattern, event) = match (cli::file_or_json(&pattern), cli::file_or_json(&event)) {
                (Ok(p), Ok(e)) => (p, e),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("switchyard: cannot read input: {e}");
                    return ExitCode::from(3);
                }
            };
            let outcome = pattern::test(&pattern, event.as_bytes());
            match &outcome {
                TestOutcome::InvalidPattern(error) => eprintln!("invalid pattern: {error}"),
                TestOutcome::InvalidEvent(error) => eprintln!("invalid event: {error}"),
                TestOutcome::Match | TestOutcome::NoMatch => {}
            }
            ExitCode::from(cli::exit_code(&outcome))
        }
        _ => match cli::test_pattern_lines(io::stdin().lock(), io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("switchyard: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `schema infer`: JSON Lines from the files (or standard input) in, a schema per type out.
fn schema_infer(infer: cli::SchemaInfer) -> ExitCode {
    let result = if infer.files.is_empty() {
        cli::infer_schema_lines(
            io::stdin().lock(),
            io::stdout().lock(),
            io::stderr().lock(),
            infer.detail,
        )
    } else {
        let mut all = Vec::new();
        for file in &infer.files {
            match std::fs::read(file) {
                Ok(mut bytes) => {
                    if !bytes.ends_with(b"\n") {
                        bytes.push(b'\n');
                    }
                    all.extend(bytes);
                }
                Err(e) => {
                    eprintln!("switchyard: cannot read {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        cli::infer_schema_lines(
            all.as_slice(),
            io::stdout().lock(),
            io::stderr().lock(),
            infer.detail,
        )
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e}");
            ExitCode::FAILURE
        }
    }
}
