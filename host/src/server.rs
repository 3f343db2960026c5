//! Start-up and shutdown of `crm serve`: open and migrate the database, seed the
//! standard objects, bootstrap the first admin, listen, and stop gracefully.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::access::AccessControl;
use crate::api::{self, App};
use crate::auth::AuthService;
use crate::config::Config;
use crate::db::{Db, redact_url};
use crate::plugins::PluginService;
use crate::plugins::delivery::Deliverer;
use crate::plugins::runtime::Runtime;
use crate::records::objects::MetadataService;
use crate::records::schema::SchemaCache;
use crate::records::seed::standard_objects;
use crate::records::service::RecordService;

/// Opens the configured database (creating the data dir for SQLite) and migrates it.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    }
    let url = config.database_url();
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    tracing::info!(database = %redact_url(&url), "database ready");
    Ok(db)
}

/// Builds the application on a migrated database and seeds what a first start needs.
pub async fn build(config: Config, db: Db) -> anyhow::Result<Arc<App>> {
    let schema = SchemaCache::load(db.clone())
        .await
        .context("cannot load object metadata")?;
    let metadata = MetadataService::new(db.clone(), schema.clone());
    let seeded = metadata
        .seed_standard_objects(standard_objects())
        .await
        .map_err(|e| anyhow::anyhow!("seeding failed: {e}"))?;
    if seeded > 0 {
        tracing::info!(added = seeded, "seeded standard objects and fields");
    }
    metadata
        .upgrade_indexes()
        .await
        .map_err(|e| anyhow::anyhow!("upgrading field indexes failed: {e}"))?;
    schema.spawn_refresher(Duration::from_secs(2));
    crate::db::stats::spawn(db.clone());
    let auth = AuthService::new(db.clone(), config.session_hours);
    let access = AccessControl::load(db.clone())
        .await
        .context("cannot load the access policy")?;
    access.spawn_refresher(Duration::from_secs(2));
    let runtime = Runtime::new(
        &config.data_dir.join("plugin-cache"),
        crate::plugins::runtime::Limits::default(),
    )
    .context("cannot start the plugin runtime")?;
    let plugins = PluginService::start(db.clone(), schema.clone(), access.clone(), runtime)
        .await
        .context("cannot load the installed plugins")?;
    plugins.spawn_refresher(Duration::from_secs(2));
    let records = RecordService::new(db.clone(), schema.clone(), access.clone(), plugins.clone());
    // Notifications are copied to email only when the host can send email.
    crate::notifications::Notifier::new(
        db.clone(),
        schema,
        access.clone(),
        config.smtp_url.is_some(),
    )
    .spawn(records.committed());
    let deliverer = Deliverer::new(plugins.clone(), records.clone());
    deliverer.clone().spawn();
    crate::plugins::jobs::JobRunner::new(plugins.clone(), records.clone()).spawn();
    let documents = crate::documents::DocumentService::new(
        db.clone(),
        access.clone(),
        records.clone(),
        crate::documents::store::BlobStore::open(&config.document_store, &config.data_dir)
            .context("cannot open the document store (CRM_DOCUMENT_STORE)")?,
        config.max_upload_bytes,
    );
    documents.spawn_sweeper();
    plugins.attach_documents(documents.clone());
    let processes = crate::process::ProcessService::new(
        records.clone(),
        plugins.clone(),
        config.process_retries.clone(),
        config.process_lease,
        config.process_schedule_min,
    );
    processes.clone().spawn();
    crate::webhooks::Deliverer::new(
        db.clone(),
        access.clone(),
        config.webhook_retries.clone(),
        config.webhook_timeout,
    )
    .context("cannot start the webhook deliverer")?
    .spawn(records.committed());
    if let Some(url) = &config.smtp_url {
        crate::mail::Mailer::new(url, &config.smtp_from, config.public_url.clone())?
            .spawn(db.clone(), records.clone());
    }
    let app = Arc::new(App {
        processes,
        documents,
        config,
        db,
        auth,
        records,
        metadata,
        access,
        plugins,
        deliverer,
    });
    tokio::spawn(crate::imports::resume_interrupted(app.clone()));
    Ok(app)
}

/// The plugin service on its own, for `crm plugin install` (no server, no hooks).
pub async fn plugin_service(config: &Config, db: Db) -> anyhow::Result<PluginService> {
    let schema = SchemaCache::load(db.clone())
        .await
        .context("cannot load object metadata")?;
    let access = AccessControl::load(db.clone())
        .await
        .context("cannot load the access policy")?;
    let runtime = Runtime::new(
        &config.data_dir.join("plugin-cache"),
        crate::plugins::runtime::Limits::default(),
    )
    .context("cannot start the plugin runtime")?;
    PluginService::start(db, schema, access, runtime).await
}

/// Creates the first admin from `CRM_ADMIN_EMAIL` / `CRM_ADMIN_PASSWORD` when there
/// are no users yet; otherwise says how to create one.
async fn bootstrap_admin(app: &App) -> anyhow::Result<()> {
    if app.auth.user_count().await? > 0 {
        return Ok(());
    }
    let email = std::env::var("CRM_ADMIN_EMAIL")
        .ok()
        .filter(|s| !s.is_empty());
    let password = std::env::var("CRM_ADMIN_PASSWORD")
        .ok()
        .filter(|s| !s.is_empty());
    match (email, password) {
        (Some(email), Some(password)) => {
            app.auth
                .create_user(
                    &email,
                    "Administrator",
                    &password,
                    (crate::access::ROOT_DEPARTMENT, "org_admin"),
                )
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cannot create the admin from CRM_ADMIN_EMAIL: {e:?}")
                })?;
            app.access.reload().await?;
            tracing::info!(%email, "created the first admin");
        }
        _ => {
            println!(
                "No users yet. Create the first admin with:\n  crm admin create --email you@example.com --name 'Your Name' --password '...'\n\
                 or start with CRM_ADMIN_EMAIL and CRM_ADMIN_PASSWORD set."
            );
        }
    }
    Ok(())
}

/// `CRM_DEMO=1`: sample records owned by the first admin, on an empty CRM.
async fn seed_demo(app: &Arc<App>) -> anyhow::Result<()> {
    let users = app.auth.list_users().await?;
    let Some(admin) = users.into_iter().find(|u| u.is_admin) else {
        tracing::warn!("CRM_DEMO is set but there is no admin to own the sample records");
        return Ok(());
    };
    let actor = crate::auth::Actor {
        user_id: admin.id,
        email: admin.email,
        name: admin.name,
        token_id: String::new(),
        plugin: None,
    };
    let count = crate::records::demo::seed(&app.records, &actor)
        .await
        .map_err(|e| anyhow::anyhow!("demo data: {e}"))?;
    if count > 0 {
        tracing::info!(records = count, "added demo records");
    }
    if std::env::var("CRM_DEMO_PLUGINS").map_or(true, |v| v != "0") {
        let app = app.clone();
        tokio::spawn(async move { install_demo_plugins(&app).await });
    }
    Ok(())
}

/// First-party plugins the demo enables for the organisation (where its records
/// live).
const DEMO_PLUGINS: &[&str] = &["data-quality", "pipelines", "forms"];

/// `CRM_DEMO=1` from a source checkout: packs the first-party plugins in
/// `plugins/` (a cargo build for wasm32-wasip2, a minute or so the first time),
/// installs, approves and enables them for the organisation, in the background
/// while the server already answers. Plugins already installed are left alone;
/// a build that fails is logged with what to do.
async fn install_demo_plugins(app: &App) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    for id in DEMO_PLUGINS {
        let dir = root.join(id);
        if app.plugins.installed(id).is_some() || !dir.join("plugin.toml").exists() {
            continue;
        }
        let out =
            std::env::temp_dir().join(format!("crm-demo-{id}-{}.crmplugin", crate::db::new_id()));
        let packed = {
            let (dir, out) = (dir.clone(), out.clone());
            tokio::task::spawn_blocking(move || {
                crate::plugins::pack::pack(&dir, None, Some(out.clone()))?;
                Ok::<_, anyhow::Error>(std::fs::read(&out)?)
            })
            .await
        };
        let _ = std::fs::remove_file(&out);
        let package = match packed {
            Ok(Ok(package)) => package,
            Ok(Err(e)) => {
                tracing::warn!(plugin = id, error = %e, "the demo could not build a plugin (rustup target add wasm32-wasip2?)");
                continue;
            }
            Err(e) => {
                tracing::warn!(plugin = id, error = %e, "the demo could not build a plugin");
                continue;
            }
        };
        let installed = async {
            app.plugins.install(&package).await?;
            app.plugins.approve(id).await?;
            app.plugins.enable(id, crate::access::ROOT_DEPARTMENT).await
        }
        .await;
        match installed {
            Ok(_) => tracing::info!(
                plugin = id,
                "the demo enabled a plugin for the organisation"
            ),
            Err(e) => {
                tracing::warn!(plugin = id, error = %e.detail, "the demo could not install a plugin")
            }
        }
    }
}

/// `crm serve`.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    let listen = config.listen;
    let app = build(config, db).await?;
    bootstrap_admin(&app).await?;
    if std::env::var("CRM_DEMO").is_ok_and(|v| v == "1") {
        seed_demo(&app).await?;
    }
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port when CRM_LISTEN ends in :0.
    println!("crm listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let router = api::router(app.clone());
    // Public plugin routes rate-limit by the client's address.
    let router = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    app.db.pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Installs the SIGTERM / SIGINT handlers now (before the port is announced, so a
/// signal sent right after start is not lost) and resolves when one arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}
