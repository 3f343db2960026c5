//! The web pages in headless Chromium against a real server, as people use them:
//! signing in, creating a contact through a validation error, a one-click status
//! change done by the page script, and the Persian layout. Each step saves a
//! screenshot under the test output (`target/tmp/screenshots/`) for review.

use crm_tests::browser::Browser;
use crm_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, Server, json, plugin_package};
use serde_json::Value;

const OUT: &str = env!("CARGO_TARGET_TMPDIR");

async fn sign_in(browser: &Browser, srv: &Server) {
    browser.goto(&srv.url("/login")).await;
    browser.type_into("#email", ADMIN_EMAIL).await;
    browser.type_into("#password", ADMIN_PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser
        .wait_until(
            "the home page",
            "return document.querySelector('.counters') !== null",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_and_creates_a_contact_after_fixing_a_validation_error() {
    let srv = Server::start(Backend::Sqlite).await;
    let browser = Browser::start(OUT).await;
    sign_in(&browser, &srv).await;
    assert!(browser.text("h1").await.contains("Administrator"));
    browser.screenshot("home").await;

    let admin = srv.admin().await;
    let acme = admin
        .create("companies", json!({"name": "Acme Trading"}))
        .await["id"]
        .clone();
    admin.create("companies", json!({"name": "Beta"})).await;

    browser.goto(&srv.url("/records/contacts")).await;
    browser.click("#new-record").await;
    // The company select's search box asks the server as one types.
    browser
        .type_into("input.reference-search[aria-controls='in-company']", "acme")
        .await;
    browser
        .wait_until(
            "only Acme offered",
            "const s = document.querySelector('#in-company'); \
             const names = [...s.options].map(o => o.text); \
             if (names.includes('Beta') || !names.includes('Acme Trading')) return false; \
             s.value = [...s.options].find(o => o.text === 'Acme Trading').value; return true",
        )
        .await;
    browser.type_into("#in-first_name", "Leyla").await;
    browser.type_into("#in-email", "leyla-at-acme").await;
    browser.click("#save").await;
    let error = browser.text("#err-last_name").await;
    assert!(!error.is_empty(), "the error stands beside the last name");
    assert!(!browser.text("#err-email").await.is_empty());
    assert_eq!(
        browser
            .script("return document.querySelector('#in-first_name').value")
            .await,
        "Leyla",
        "what was typed is kept"
    );
    browser.screenshot("contact-with-errors").await;

    browser.type_into("#in-last_name", "Karimi").await;
    browser.type_into("#in-email", "leyla@acme.example").await;
    browser.click("#save").await;
    browser
        .wait_until(
            "the saved contact",
            "return document.querySelector('h1').textContent === 'Leyla Karimi'",
        )
        .await;
    browser.screenshot("contact-saved").await;
    let found = admin.get("/api/v1/records/contacts?q=karimi").await;
    assert_eq!(found.body["items"][0]["email"], "leyla@acme.example");
    assert_eq!(
        found.body["items"][0]["company"], acme,
        "the company found by search"
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_status_changes_in_one_click_without_leaving_the_list() {
    let srv = Server::start(Backend::Sqlite).await;
    let admin = srv.admin().await;
    let deal = admin.create("deals", json!({"name": "Acme renewal"})).await;
    let browser = Browser::start(OUT).await;
    sign_in(&browser, &srv).await;
    let list = srv.url("/records/deals");
    browser.goto(&list).await;
    // A marker the page keeps only if the click does not reload it.
    browser.script("window.stayed = true; return null").await;
    browser.click("form.quick button[value=won]").await;
    browser
        .wait_until(
            "the pressed button",
            "return document.querySelector('form.quick button[value=won]').getAttribute('aria-pressed') === 'true'",
        )
        .await;
    assert_eq!(
        browser.script("return window.stayed === true").await,
        Value::Bool(true)
    );
    assert_eq!(browser.current_url().await, list);
    browser.screenshot("deal-status-won").await;
    let got = admin
        .get(&format!(
            "/api/v1/records/deals/{}",
            deal["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(got.body["status"], "won");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persian_page_is_laid_out_right_to_left() {
    let srv = Server::start(Backend::Sqlite).await;
    let browser = Browser::start(OUT).await;
    browser.goto(&srv.url("/login?lang=fa")).await;
    assert_eq!(browser.text("h1").await, "ورود");
    sign_in(&browser, &srv).await;
    let layout = browser
        .script(
            "const main = document.querySelector('main'); \
             const brand = document.querySelector('.brand').getBoundingClientRect(); \
             return [getComputedStyle(main).direction, document.documentElement.lang, \
                     brand.left > window.innerWidth / 2];",
        )
        .await;
    assert_eq!(
        layout,
        json!(["rtl", "fa", true]),
        "the header starts on the right"
    );
    browser.screenshot("persian-home").await;
    browser.goto(&srv.url("/records/deals/new")).await;
    let label_side = browser
        .script(
            "const l = document.querySelector('label[for=in-name]').getBoundingClientRect(); \
             const i = document.querySelector('#in-name').getBoundingClientRect(); \
             return Math.round(l.right) === Math.round(i.right);",
        )
        .await;
    assert_eq!(
        label_side,
        Value::Bool(true),
        "labels align to the right edge"
    );
    browser.screenshot("persian-new-deal").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_changes_stage_on_the_pipeline_board() {
    let srv = Server::start(Backend::Sqlite).await;
    let admin = srv.admin().await;
    let root = "00000000-0000-0000-0000-000000000001";
    admin
        .install_plugin(plugin_package("plugins/pipelines"), root)
        .await;
    let deal = admin
        .create("deals", json!({"name": "Acme renewal", "amount": 12000}))
        .await;
    let id = deal["id"].as_str().unwrap();
    let browser = Browser::start(OUT).await;
    sign_in(&browser, &srv).await;
    browser.click("a[href='/apps/pipelines/views/board']").await;
    let card = format!("[data-column=lead-in] a[href='/records/deals/{id}']");
    browser.find(&card).await;
    browser.screenshot("pipeline-board-before").await;
    // The card's own move control (what a keyboard user and a drop both submit).
    browser
        .script(
            "document.querySelector('[data-column=lead-in] form.move select').value = 'proposal'; return null",
        )
        .await;
    browser
        .click("[data-column=lead-in] form.move button")
        .await;
    browser
        .find(&format!(
            "[data-column=proposal] a[href='/records/deals/{id}']"
        ))
        .await;
    browser.screenshot("pipeline-board-after").await;
    let got = admin.get(&format!("/api/v1/records/deals/{id}")).await;
    assert_eq!(got.body["stage"], "proposal");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_uploads_a_plugin_and_enables_it_for_a_department() {
    let srv = Server::start(Backend::Sqlite).await;
    let admin = srv.admin().await;
    admin.department("Sales").await;
    let package = std::path::Path::new(OUT).join("pipelines.crmplugin");
    std::fs::write(&package, plugin_package("plugins/pipelines")).expect("package written");
    let browser = Browser::start(OUT).await;
    sign_in(&browser, &srv).await;
    browser.click("a[href='/admin/people']").await;
    browser.click("a[href='/admin/plugins']").await;
    // A file input takes the file's path as typed text.
    browser
        .type_into("#package", package.to_str().unwrap())
        .await;
    browser.click("#upload-plugin").await;
    browser.click("#approve-pipelines").await;
    // The department choice appears once the approval's page has loaded.
    browser
        .wait_until(
            "Sales chosen",
            "const s = document.querySelector('#enable-department-pipelines'); \
             if (!s) return false; \
             s.value = [...s.options].find(o => o.text === 'Sales').value; \
             return s.selectedOptions[0].text === 'Sales'",
        )
        .await;
    browser.screenshot("admin-plugin-review").await;
    browser.click("#enable-pipelines").await;
    browser
        .wait_until(
            "the plugin enabled in Sales",
            "return [...document.querySelectorAll('#plugin-pipelines li')].some(li => li.textContent.includes('Sales'))",
        )
        .await;
    browser.screenshot("admin-plugin-enabled").await;
    let info = admin.get("/api/v1/plugins/pipelines").await;
    assert_eq!(info.body["approved"], true);
    assert_eq!(info.body["departments"].as_array().map(Vec::len), Some(1));
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_uploads_a_new_version_of_a_document() {
    let srv = Server::start(Backend::Sqlite).await;
    let file = std::path::Path::new(OUT).join("offer-v2.txt");
    std::fs::write(&file, "the second version of the offer").expect("file written");
    let browser = Browser::start(OUT).await;
    sign_in(&browser, &srv).await;
    browser.click("a[href='/documents']").await;
    browser.type_into("#folder-name", "Offers").await;
    browser.click("#create-folder").await;
    browser.type_into("#doc-title", "Acme offer").await;
    browser.type_into("#doc-file", file.to_str().unwrap()).await;
    browser.click("#upload-document").await;
    browser.find("#upload-version").await;
    browser.type_into("#version-reason", "new prices").await;
    browser
        .type_into("#version-file", file.to_str().unwrap())
        .await;
    browser.click("#upload-version").await;
    browser
        .wait_until(
            "version 2 listed",
            "return document.querySelector('#version-2') !== null",
        )
        .await;
    assert!(browser.text("#version-2").await.contains("new prices"));
    browser.screenshot("document-versions").await;
    browser.quit().await;
}

/// What the accessibility audit checks on a page, in the browser: a language and
/// a short title (no markup), one `h1`; a name for every form control (a label, `aria-label` or
/// `aria-labelledby`), every button and link and every chart; `alt` on images;
/// ids used once and `aria-describedby` pointing at elements that exist; and the
/// WCAG AA contrast of every visible text against what is behind it (4.5:1, 3:1
/// for large text). Answers each problem found.
const AUDIT: &str = r#"
const problems = [];
const where = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.getAttribute('name') ? '[name=' + el.getAttribute('name') + ']' : '');
const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length) && getComputedStyle(el).visibility !== 'hidden';
const byIds = ids => (ids || '').split(/\s+/).map(i => document.getElementById(i)).filter(Boolean).map(e => e.textContent).join('').trim();
const named = el => (el.getAttribute('aria-label') || '').trim() || byIds(el.getAttribute('aria-labelledby'))
    || (el.labels ? [...el.labels].map(l => l.textContent).join('').trim() : '') || (el.getAttribute('title') || '').trim();
if (!document.documentElement.lang) problems.push('the page has no lang');
if (!document.title.trim()) problems.push('the page has no title');
if (document.title.includes('<') || document.title.length > 200) problems.push('the title is not a title: ' + document.title.slice(0, 60));
const h1s = document.querySelectorAll('h1').length;
if (h1s !== 1) problems.push(h1s + ' h1 headings');
for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  if (el.closest('[aria-hidden=true]')) continue;
  if (!named(el)) problems.push('a control without a label: ' + where(el));
}
for (const el of document.querySelectorAll('button, a[href]')) {
  if (!(el.textContent.trim() || (el.getAttribute('aria-label') || '').trim())) problems.push('no text: ' + where(el));
}
for (const el of document.querySelectorAll('img')) if (!el.hasAttribute('alt')) problems.push('no alt: ' + where(el));
for (const el of document.querySelectorAll('svg[role=img]')) if (!named(el)) problems.push('a chart without a name');
const ids = new Set();
for (const el of document.querySelectorAll('[id]')) { if (ids.has(el.id)) problems.push('id twice: ' + el.id); ids.add(el.id); }
for (const el of document.querySelectorAll('[aria-describedby]'))
  for (const id of el.getAttribute('aria-describedby').split(/\s+/)) if (!document.getElementById(id)) problems.push('aria-describedby names no element: ' + id);
const rgb = s => { const m = s.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
const behind = el => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c && c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
const reported = new Set();
for (const el of document.querySelectorAll('body *')) {
  if (!visible(el) || el.closest(':disabled') || el.closest('[aria-hidden=true]')) continue;
  if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const style = getComputedStyle(el);
  const fg = rgb(style.color), bg = behind(el);
  if (!fg) continue;
  const blend = k => fg[k] * fg.a + bg[k] * (1 - fg.a);
  const ink = {r: blend('r'), g: blend('g'), b: blend('b')};
  const [hi, lo] = [lum(ink), lum(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
  const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  const key = style.color + '/' + JSON.stringify(bg) + '/' + need;
  if (ratio < need && !reported.has(key)) {
    reported.add(key);
    problems.push('contrast ' + ratio.toFixed(2) + ':1 under ' + need + ':1: ' + where(el) + ' "' + el.textContent.trim().slice(0, 30) + '"');
  }
}
return problems;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_the_accessibility_audit_in_english_and_persian() {
    let srv = Server::start(Backend::Sqlite).await;
    let admin = srv.admin().await;
    let root = "00000000-0000-0000-0000-000000000001";
    for plugin in ["plugins/pipelines", "plugins/forms"] {
        admin.install_plugin(plugin_package(plugin), root).await;
    }
    let acme = admin
        .create("companies", json!({"name": "Acme Trading"}))
        .await;
    let contact = admin
        .create(
            "contacts",
            json!({"first_name": "Leyla", "last_name": "Karimi", "company": acme["id"]}),
        )
        .await;
    let deal = admin
        .create("deals", json!({"name": "Acme renewal", "amount": 12000}))
        .await;
    admin
        .create(
            "activities",
            json!({"kind": "meeting", "topic": "Kick-off", "starts_at": "2026-11-25T09:00:00Z", "status": "new"}),
        )
        .await;
    let pages = [
        "/".to_string(),
        "/records/contacts".into(),
        format!("/records/contacts/{}", contact["id"].as_str().unwrap()),
        "/records/contacts/new".into(),
        format!("/records/deals/{}/edit", deal["id"].as_str().unwrap()),
        "/records/deals".into(),
        "/calendar?view=month&date=2026-11-25".into(),
        "/reports".into(),
        "/reports/new?object=deals".into(),
        "/documents".into(),
        "/documents?trash=1".into(),
        "/tasks".into(),
        "/notifications".into(),
        "/imports".into(),
        "/settings".into(),
        "/admin/people".into(),
        "/admin/roles/new".into(),
        "/admin/objects".into(),
        "/admin/objects/contacts".into(),
        "/admin/plugins".into(),
        "/admin/webhooks".into(),
        "/apps/pipelines/views/board".into(),
        "/apps/forms/views/forms?new".into(),
    ];
    let mut problems = Vec::new();
    for lang in ["en", "fa"] {
        let browser = Browser::start(OUT).await;
        browser.goto(&srv.url(&format!("/login?lang={lang}"))).await;
        let found = browser.script(AUDIT).await;
        for p in found.as_array().unwrap() {
            problems.push(format!("{lang} /login: {}", p.as_str().unwrap()));
        }
        sign_in(&browser, &srv).await;
        for page in &pages {
            browser.goto(&srv.url(page)).await;
            assert!(
                !browser.current_url().await.contains("/login"),
                "{page} is shown to the signed-in admin"
            );
            let found = browser.script(AUDIT).await;
            for p in found.as_array().unwrap() {
                problems.push(format!("{lang} {page}: {}", p.as_str().unwrap()));
            }
        }
        // A form refused: its errors beside the fields, tied to them.
        browser.goto(&srv.url("/records/contacts/new")).await;
        browser.click("#save").await;
        browser
            .wait_until(
                "the refused form",
                "return document.querySelector('[aria-invalid=true]') !== null",
            )
            .await;
        browser
            .screenshot(&format!("audit-refused-form-{lang}"))
            .await;
        for p in browser.script(AUDIT).await.as_array().unwrap() {
            problems.push(format!("{lang} refused form: {}", p.as_str().unwrap()));
        }
        // The audit finds what it looks for: an input without a label and faint
        // text added to the page are reported.
        browser
            .script(
                "const main = document.querySelector('main'); \
                 const input = document.createElement('input'); input.id = 'probe-input'; main.appendChild(input); \
                 const faint = document.createElement('p'); faint.textContent = 'faint'; faint.style.color = '#cccccc'; \
                 main.appendChild(faint); return null",
            )
            .await;
        let probed = browser.script(AUDIT).await.to_string();
        assert!(
            probed.contains("a control without a label: input#probe-input"),
            "{probed}"
        );
        assert!(probed.contains("\\\"faint\\\""), "{probed}");
        browser.quit().await;
    }
    assert!(
        problems.is_empty(),
        "{} accessibility problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
