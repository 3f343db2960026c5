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
