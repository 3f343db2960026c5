//! Web pages benchmark: the list page (50 records out of 1,000,000) and the record
//! page of a release `crm serve` on SQLite, each beside the JSON API answering the
//! same read in the same run (the baseline: what the page adds is rendering,
//! menus, names and history).
//!
//! Run with `cargo bench -p crm-tests --bench web`. A benchmark, not a test:
//! targets are reported as PASS or MISS, never asserted. See BENCHMARKS.md.

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::web::{client, form, page};
use crm_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, Options, Server, json};

const REQUESTS: usize = 300;
const WARMUP: usize = 30;
/// Requests of each sorted list ([2]).
const SORTED_REQUESTS: usize = 100;
const TIME: Duration = Duration::from_secs(30);
const TARGET_LIST_P50: Duration = Duration::from_millis(30);
const TARGET_RECORD_P50: Duration = Duration::from_millis(20);
const TARGET_FIRST_PAGE_BYTES: usize = 100 * 1024;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    println!();
    println!("crm web pages benchmark: release `crm serve` on SQLite, loopback HTTP, 1 client");
    println!("{}", "=".repeat(78));
    let srv = Server::start_with(
        Backend::Sqlite,
        Options {
            release: true,
            ..Default::default()
        },
    )
    .await;
    let api = srv.admin().await;
    let res = api
        .post(
            "/api/v1/objects",
            json!({"name": "bench_items", "fields": [
                {"name": "name", "type": "text"},
                {"name": "code", "type": "integer", "indexed": true}
            ]}),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let (pool, admin_id) = open_server_db(&srv).await;
    progress("seeding 1,000,000 records");
    let seed_time = seed(&pool, |_| (admin_id.clone(), None)).await;
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM records WHERE object = 'bench_items' ORDER BY random() LIMIT 400",
    )
    .fetch_all(&pool)
    .await
    .expect("sample ids");
    pool.close().await;
    println!(
        "\n    seeded {} records of bench_items in {:.1} s (not measured)",
        thousands(SEED_ROWS as f64),
        seed_time.as_secs_f64()
    );

    // A browser session: the cookie of the sign-in form.
    let http = client();
    let signed = page(
        http.post(srv.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ])),
    )
    .await;
    let cookie = signed
        .set_cookie
        .expect("signed in")
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let mut rng = Rng::new();
    let codes: Arc<Vec<i64>> = Arc::new((0..REQUESTS + WARMUP).map(|_| rng.code()).collect());
    let list_query = |code: i64| format!("filter%5Bcode%5D%5Bgte%5D={code}&sort=code&limit=50");

    // [1] The object's list as it opens (newest first), then page after page by
    // the cursors the API hands out: 50 records each, out of 1,000,000.
    progress("collecting page cursors");
    let mut cursors: Vec<String> = vec![String::new()];
    while cursors.len() < REQUESTS + WARMUP {
        let last = cursors.last().unwrap().clone();
        let path = match last.as_str() {
            "" => "/api/v1/records/bench_items?limit=50".to_string(),
            c => format!("/api/v1/records/bench_items?limit=50&cursor={c}"),
        };
        let page = api.get(&path).await;
        let next = page.body["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        cursors.push(next);
    }
    let cursors = Arc::new(cursors);
    let cursor_query = |c: &str| match c {
        "" => "limit=50".to_string(),
        c => format!("limit=50&cursor={c}"),
    };
    progress("list via the JSON API");
    let api_list = measure({
        let (api, cursors) = (api.clone(), cursors.clone());
        move |i| {
            let rb = api.request(
                Method::GET,
                &format!("/api/v1/records/bench_items?{}", cursor_query(&cursors[i])),
            );
            async move { expect_ok(rb).await.map(|_| ()) }
        }
    })
    .await;
    progress("list page");
    let page_list = measure({
        let (http, base, cookie, cursors) = (
            http.clone(),
            srv.base.clone(),
            cookie.clone(),
            cursors.clone(),
        );
        move |i| {
            let rb = http
                .get(format!(
                    "{base}/records/bench_items?{}",
                    cursor_query(&cursors[i])
                ))
                .header("cookie", &cookie);
            async move {
                let html = expect_ok(rb).await?;
                match html.matches("<tr>").count() - 1 {
                    50 => Ok(()),
                    rows => Err(format!("{rows} rows on a list page")),
                }
            }
        }
    })
    .await;

    // [2] Sorted by an indexed custom field: from a random value on (a filter and
    // the sort), and the whole list by the field, highest first (a click on the
    // column's header). Each through the API and as the page.
    let sorted = |query: fn(i64) -> String| {
        let (api, http, base, cookie, codes) = (
            api.clone(),
            http.clone(),
            srv.base.clone(),
            cookie.clone(),
            codes.clone(),
        );
        async move {
            let via_api = measure_n(SORTED_REQUESTS, {
                let (api, codes) = (api.clone(), codes.clone());
                move |i| {
                    let rb = api.request(
                        Method::GET,
                        &format!("/api/v1/records/bench_items?{}", query(codes[i])),
                    );
                    async move { expect_ok(rb).await.map(|_| ()) }
                }
            })
            .await;
            let as_page = measure_n(SORTED_REQUESTS, move |i| {
                let rb = http
                    .get(format!("{base}/records/bench_items?{}", query(codes[i])))
                    .header("cookie", &cookie);
                async move {
                    let html = expect_ok(rb).await?;
                    match html.matches("<tr>").count() - 1 {
                        50 => Ok(()),
                        rows => Err(format!("{rows} rows on a sorted list page")),
                    }
                }
            })
            .await;
            (via_api, as_page)
        }
    };
    progress("lists sorted by a field");
    let (sorted_api, sorted_page) = sorted(list_query).await;
    let (by_field_api, by_field_page) = sorted(|_| "sort=-code&limit=50".to_string()).await;

    let ids = Arc::new(ids);
    progress("record via the JSON API");
    let api_record = measure({
        let (api, ids) = (api.clone(), ids.clone());
        move |i| {
            let rb = api.request(
                Method::GET,
                &format!("/api/v1/records/bench_items/{}", ids[i % ids.len()]),
            );
            async move { expect_ok(rb).await.map(|_| ()) }
        }
    })
    .await;
    progress("record page");
    let page_record = measure({
        let (http, base, cookie, ids) =
            (http.clone(), srv.base.clone(), cookie.clone(), ids.clone());
        move |i| {
            let rb = http
                .get(format!("{base}/records/bench_items/{}", ids[i % ids.len()]))
                .header("cookie", &cookie);
            async move {
                let html = expect_ok(rb).await?;
                if html.contains("<h1>Item ") {
                    Ok(())
                } else {
                    Err("no record title on the page".into())
                }
            }
        }
    })
    .await;

    // What a first visit transfers: the list page, the stylesheet and the script.
    let mut first_visit = 0;
    for path in ["/records/bench_items", "/static/app.css", "/static/app.js"] {
        let p = page(http.get(srv.url(path)).header("cookie", &cookie)).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        first_visit += p.html.len();
    }

    println!(
        "\n[1] List: 50 records of 1,000,000, newest first, pages 1 to {REQUESTS} by cursor; p50 / p99 / max"
    );
    row(
        "JSON API (baseline)",
        &latencies(&api_list),
        &count(&api_list),
    );
    row(
        "list page",
        &latencies(&page_list),
        &format!(
            "{}; p50 {:.1}x the API",
            count(&page_list),
            ratio(page_list.pct(0.5), api_list.pct(0.5))
        ),
    );
    println!("\n[2] Sorted by an indexed custom field, p50 / p99 / max");
    for (what, via_api, as_page) in [
        (
            "from a random value (filter gte + sort)",
            &sorted_api,
            &sorted_page,
        ),
        (
            "whole list, highest first (sort=-code)",
            &by_field_api,
            &by_field_page,
        ),
    ] {
        println!("    {what}");
        row("JSON API", &latencies(via_api), &count(via_api));
        row(
            "list page",
            &latencies(as_page),
            &format!(
                "{}; p50 {:.1}x the API",
                count(as_page),
                ratio(as_page.pct(0.5), via_api.pct(0.5))
            ),
        );
    }
    println!("\n[3] Record page (fields, related records, documents, history), p50 / p99 / max");
    row(
        "JSON API (baseline)",
        &latencies(&api_record),
        &count(&api_record),
    );
    row(
        "record page",
        &latencies(&page_record),
        &format!(
            "{}; p50 {:.1}x the API",
            count(&page_record),
            ratio(page_record.pct(0.5), api_record.pct(0.5))
        ),
    );
    println!(
        "\n[4] First visit: list page + app.css + app.js = {} bytes (uncompressed)",
        thousands(first_visit as f64)
    );

    println!("\n{}", "=".repeat(78));
    println!("Summary");
    let list_ok = page_list.errors == 0 && page_list.pct(0.5) < TARGET_LIST_P50;
    let record_ok = page_record.errors == 0 && page_record.pct(0.5) < TARGET_RECORD_P50;
    summary(
        "list page p50 (1M records)",
        &ms(page_list.pct(0.5)),
        &format!("{:.1}x API", ratio(page_list.pct(0.5), api_list.pct(0.5))),
        &target(list_ok, "< 30 ms"),
    );
    let sorted_ok = [&sorted_page, &by_field_page]
        .iter()
        .all(|p| p.errors == 0 && p.pct(0.5) < TARGET_LIST_P50);
    summary(
        "sorted list page p50 (slower of [2])",
        &ms(sorted_page.pct(0.5).max(by_field_page.pct(0.5))),
        "",
        &target(sorted_ok, "< 30 ms"),
    );
    summary(
        "record page p50",
        &ms(page_record.pct(0.5)),
        &format!(
            "{:.1}x API",
            ratio(page_record.pct(0.5), api_record.pct(0.5))
        ),
        &target(record_ok, "< 20 ms"),
    );
    summary(
        "first visit transfer",
        &format!("{} KB", first_visit / 1024),
        "",
        &target(first_visit < TARGET_FIRST_PAGE_BYTES, "< 100 KB"),
    );
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
}

/// Times `n` sequential requests after a short warm-up.
async fn measure_n<F, Fut>(n: usize, op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let warm = op.clone();
    run_load(1, 3, TIME, move |i| warm(n + i)).await;
    run_load(1, n, TIME, op).await
}

/// Warms up, then times REQUESTS sequential requests.
async fn measure<F, Fut>(op: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let warm = op.clone();
    run_load(1, WARMUP, TIME, move |i| warm(REQUESTS + i)).await;
    run_load(1, REQUESTS, TIME, op).await
}

async fn expect_ok(rb: crm_tests::reqwest::RequestBuilder) -> Result<String, String> {
    let res = rb.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res.text().await.map_err(|e| e.to_string())?;
    if status == StatusCode::OK {
        Ok(body)
    } else {
        Err(format!(
            "{status}: {}",
            body.chars().take(300).collect::<String>()
        ))
    }
}

fn count(run: &Run) -> String {
    match &run.first_error {
        Some(e) => format!("{} requests, {} errors: {e}", run.done, run.errors),
        None => format!("{} requests", run.done),
    }
}
