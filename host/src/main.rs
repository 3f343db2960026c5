//! The `crm` command: run the server, migrate the database, create an admin.

use clap::{Parser, Subcommand};
use crm_host::config::Config;
use crm_host::server;

/// mimalloc rather than glibc's allocator: an import builds and drops a JSON map, an
/// audit diff and an event per row on several threads, and glibc's malloc and free
/// (with their consolidation of freed chunks) were 21% of the CPU of a 1,000,000-row
/// import (perf, BENCHMARKS.md). Its `override` feature makes it the C `malloc` too,
/// so SQLite's allocations (a sixth of its single writer thread's time under glibc,
/// perf, issue 10) go to it as well.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "crm",
    version,
    about = "The CRM server",
    long_about = "The CRM server.\n\n\
Configured by the environment: CRM_LISTEN (default 127.0.0.1:8080), CRM_DATA_DIR (default ./data), \
CRM_DATABASE_URL (default: SQLite in the data dir; postgres://... for PostgreSQL), CRM_MAX_BODY_BYTES \
(default 1048576), CRM_MAX_UPLOAD_BYTES (default 2147483648), \
CRM_DOCUMENT_STORE (local, or s3://bucket[/prefix] with CRM_S3_ENDPOINT and AWS_*), CRM_SESSION_HOURS (default 12), CRM_LOG_FORMAT=json, RUST_LOG; and on first start \
CRM_ADMIN_EMAIL and CRM_ADMIN_PASSWORD to create the first admin."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve,
    /// Run the database migrations and exit.
    Migrate,
    /// Manage admins.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Start, build and package plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a plugin crate that builds, passes its test and packs out of the box.
    New {
        /// The plugin's id (a-z, 0-9 and -), also the crate's name.
        id: String,
        /// Where to create it; default a folder named after the id, here.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
        /// The crm-plugin-sdk crate to depend on; default the one this `crm` was
        /// built with.
        #[arg(long)]
        sdk: Option<std::path::PathBuf>,
    },
    /// Build the plugin crate in DIR for wasm32-wasip2 and write its package
    /// (plugin.toml + plugin.wasm), ready for POST /api/v1/plugins.
    Pack {
        /// The plugin crate (holding Cargo.toml and plugin.toml).
        #[arg(default_value = ".")]
        dir: std::path::PathBuf,
        /// Pack this component instead of building the crate.
        #[arg(long)]
        wasm: Option<std::path::PathBuf>,
        /// Where to write the package; default `<id>-<version>.crmplugin` here.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Install (or upgrade) a package into the configured database, as
    /// POST /api/v1/plugins does; running servers pick it up within seconds.
    Install(InstallArgs),
}

#[derive(clap::Args)]
struct InstallArgs {
    /// The package (`crm plugin pack` makes it).
    file: std::path::PathBuf,
    /// Also approve the capabilities it asks for (you are the admin here).
    #[arg(long)]
    approve: bool,
    /// Also enable it in this department (id); repeat for several. Implies --approve.
    #[arg(long = "enable", value_name = "DEPARTMENT")]
    enable: Vec<String>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin user.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// The password; read from CRM_ADMIN_PASSWORD when not given.
        #[arg(long, env = "CRM_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Creating and packing need no configuration, database or runtime.
    if let Command::Plugin {
        command: PluginCommand::New { id, dir, sdk },
    } = &cli.command
    {
        let dir = dir.clone().unwrap_or_else(|| id.into());
        let sdk = sdk
            .clone()
            .unwrap_or_else(crm_host::plugins::scaffold::default_sdk);
        return match crm_host::plugins::scaffold::new_plugin(id, &dir, &sdk) {
            Ok(()) => {
                println!(
                    "created {}: `cargo test` there runs its tests, `crm plugin pack {}` builds its package",
                    dir.display(),
                    dir.display()
                );
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if let Command::Plugin {
        command: PluginCommand::Pack { dir, wasm, out },
    } = &cli.command
    {
        return match crm_host::plugins::pack::pack(dir, wasm.clone(), out.clone()) {
            Ok(path) => {
                println!("{}", path.display());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => server::serve(config).await,
            Command::Plugin {
                command: PluginCommand::Install(args),
            } => install_plugin(&config, args).await,
            Command::Plugin { .. } => unreachable!("handled before the runtime starts"),
            Command::Migrate => {
                server::open_database(&config).await?;
                println!("migrations are up to date");
                Ok(())
            }
            Command::Admin {
                command:
                    AdminCommand::Create {
                        email,
                        name,
                        password,
                    },
            } => {
                let db = server::open_database(&config).await?;
                let auth = crm_host::auth::AuthService::new(db, config.session_hours);
                let user = auth
                    .create_user(
                        &email,
                        &name,
                        &password,
                        (crm_host::access::ROOT_DEPARTMENT, "org_admin"),
                    )
                    .await
                    .map_err(|e| match e {
                        crm_host::auth::AuthError::Invalid(errors) => anyhow::anyhow!(
                            "{}",
                            errors
                                .iter()
                                .map(|e| format!("{} {}", e.field, e.message))
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                        e => anyhow::anyhow!("{e}"),
                    })?;
                println!("created admin {} ({})", user.email, user.id);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn install_plugin(config: &Config, args: InstallArgs) -> anyhow::Result<()> {
    let package = std::fs::read(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let db = server::open_database(config).await?;
    let plugins = server::plugin_service(config, db).await?;
    let refused = |e: crm_host::api::error::ApiError| {
        let fields: Vec<String> = e
            .errors
            .iter()
            .map(|f| format!("\n  {}: {}", f.field, f.message))
            .collect();
        anyhow::anyhow!("{}{}", e.detail, fields.concat())
    };
    let mut info = plugins.install(&package).await.map_err(refused)?;
    if args.approve || !args.enable.is_empty() {
        info = plugins.approve(&info.id).await.map_err(refused)?;
    }
    for department in &args.enable {
        info = plugins
            .enable(&info.id, department)
            .await
            .map_err(refused)?;
    }
    println!(
        "installed {} {} (approved: {}, enabled in: {})",
        info.id,
        info.version,
        info.approved,
        if info.departments.is_empty() {
            "no department yet".to_string()
        } else {
            info.departments.join(", ")
        }
    );
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}
