//! The web pages over plain HTTP, as a browser without JavaScript uses them, on
//! SQLite and PostgreSQL: sessions and CSRF, metadata-driven lists and forms,
//! field rights on pages, one-click status changes, languages.

use crm_tests::reqwest::StatusCode;
use crm_tests::web::{WebSession, client, form, input_value, page};
use crm_tests::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Backend, Server, eventually, json, on_both_backends,
    plugin_package,
};

on_both_backends!(
    pages_need_a_session_and_forms_need_its_csrf_token,
    a_form_shows_each_error_beside_its_field_then_saves,
    hidden_fields_never_reach_a_page_and_read_only_ones_are_not_editable,
    a_list_filters_sorts_searches_and_pages,
    a_status_changes_in_one_click,
    an_edit_made_on_a_stale_version_comes_back_with_the_newest,
    a_persian_user_gets_right_to_left_pages_with_persian_digits_and_dates,
    a_plugin_page_shows_the_pipeline_board_and_moves_a_deal,
    an_admin_uploads_approves_and_enables_a_plugin_for_a_department,
    the_document_library_uploads_versions_restores_and_locks,
    the_calendar_shows_a_persons_activities_and_warns_of_double_bookings,
    a_task_is_taken_and_completed_from_the_inbox,
    an_admin_adds_a_department_and_a_user_and_reads_the_role_matrix,
    the_reports_page_shows_key_figures_and_draws_a_saved_report,
    the_notifications_page_shows_what_i_was_told_and_what_changed,
    an_import_is_uploaded_mapped_checked_and_run_from_its_page,
    an_admin_subscribes_a_webhook_reads_its_log_and_replays_a_delivery,
    a_report_and_a_dashboard_are_made_from_their_forms,
    an_admin_deactivates_a_user_and_replays_a_plugins_dead_letter,
    a_reference_select_finds_more_records_by_name_within_the_visitors_rights,
    an_admin_edits_a_roles_rights_and_field_rights_on_its_page,
    an_owner_shares_a_record_from_its_page_and_stops_sharing,
    an_admin_makes_an_object_and_adds_its_fields_on_its_pages,
    an_admin_changes_and_removes_a_field_on_its_page,
    a_user_picks_list_columns_and_saves_the_view_for_later,
    a_solar_hijri_user_types_dates_in_their_calendar,
    an_admin_builds_a_form_on_the_form_builder_page,
    a_document_is_shared_from_its_page_then_trashed_put_back_and_purged,
);

const ROOT: &str = "00000000-0000-0000-0000-000000000001";

async fn pages_need_a_session_and_forms_need_its_csrf_token(backend: Backend) {
    let srv = Server::start(backend).await;
    let http = client();
    let anonymous = page(http.get(srv.url("/records/contacts?q=x"))).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.location.as_deref(),
        Some("/login?next=%2Frecords%2Fcontacts%3Fq%3Dx"),
        "back to the page after signing in"
    );
    let login = page(http.get(srv.url("/login"))).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.content_type.starts_with("text/html"));
    assert!(login.html.contains("name=\"password\""));

    let wrong = page(
        http.post(srv.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("email", ADMIN_EMAIL), ("password", "nope")])),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.html.contains("id=\"login-error\""), "{}", wrong.html);
    assert!(wrong.set_cookie.is_none());

    // A sign-in form posted from another site is refused (login CSRF).
    let cross = page(
        http.post(srv.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", "http://evil.example")
            .body(form(&[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ])),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(cross.set_cookie.is_none());
    // Only this site's paths are followed after signing in.
    let lured = page(http.get(srv.url("/login?next=/%09/evil.example"))).await;
    assert!(
        lured.html.contains("name=\"next\" value=\"/\""),
        "{}",
        lured.html
    );
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let home = web.get("/").await;
    assert!(
        home.html.contains("Administrator"),
        "the page greets its user"
    );
    assert!(
        home.html.contains("href=\"/records/contacts\""),
        "the menu lists objects"
    );

    // A form without this session's token is refused and writes nothing.
    for token in ["", "0123456789abcdef0123456789abcdef"] {
        let forged = web
            .post_raw(
                "/records/contacts",
                &[("_csrf", token), ("last_name", "Forged")],
                false,
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.html);
    }
    let admin = srv.admin().await;
    let listed = admin.get("/api/v1/records/contacts?q=Forged").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 0);

    // Signing out revokes the session.
    let out = web.post("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(web.get("/").await.status, StatusCode::SEE_OTHER);
    // Pages are served with a policy that runs only the site's own script.
    let css = page(http.get(srv.url("/static/app.css"))).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.content_type.starts_with("text/css"));
}

async fn a_form_shows_each_error_beside_its_field_then_saves(backend: Backend) {
    let srv = Server::start(backend).await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let new = web.get("/records/contacts/new").await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(new.html.contains("id=\"in-last_name\""));
    assert!(new.html.contains("aria-required=\"true\""));

    let bad = web
        .post(
            "/records/contacts",
            &[
                ("first_name", "Leyla"),
                ("email", "not-an-email"),
                ("last_name", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    for field in ["last_name", "email"] {
        assert!(
            bad.html
                .contains(&format!("<p class=\"field-error\" id=\"err-{field}\">")),
            "an error beside {field}: {}",
            bad.html
        );
    }
    assert!(!bad.html.contains("id=\"err-first_name\""));
    assert_eq!(
        input_value(&bad.html, "first_name").as_deref(),
        Some("Leyla"),
        "what was typed stays"
    );
    assert_eq!(
        input_value(&bad.html, "email").as_deref(),
        Some("not-an-email")
    );

    let good = web
        .post(
            "/records/contacts",
            &[
                ("first_name", "Leyla"),
                ("last_name", "Karimi"),
                ("email", "leyla@acme.example"),
            ],
        )
        .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.html);
    let location = good.location.unwrap();
    let id = location.rsplit('/').next().unwrap().to_string();
    let admin = srv.admin().await;
    let saved = admin.get(&format!("/api/v1/records/contacts/{id}")).await;
    assert_eq!(saved.body["email"], "leyla@acme.example");
    assert_eq!(saved.body["first_name"], "Leyla");

    let shown = web.get(&location).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(
        shown.html.contains("<h1>Leyla Karimi</h1>"),
        "{}",
        shown.html
    );
    assert!(
        shown.html.contains("created the record"),
        "its history is on the page"
    );

    // Editing: an emptied optional field is cleared, nothing else is touched.
    let edit = web.get(&format!("{location}/edit")).await;
    let version = input_value(&edit.html, "_version").unwrap();
    let saved = web
        .post(
            &location,
            &[
                ("_version", &version),
                ("first_name", "Leyla"),
                ("last_name", "Karimi"),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let after = admin.get(&format!("/api/v1/records/contacts/{id}")).await;
    assert!(
        after.body.get("email").is_none_or(|e| e.is_null()),
        "{}",
        after.body
    );
    assert_eq!(after.body["version"], 2);
}

async fn hidden_fields_never_reach_a_page_and_read_only_ones_are_not_editable(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let role = admin
        .post(
            "/api/v1/roles",
            json!({
                "name": "telesales", "label": "Telesales",
                "permissions": {"*": {"read": "department", "create": "department", "update": "department"}},
                "fields": {"contacts": {"email": "hidden", "phone": "read"}}
            }),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    srv.member("tom@example.com", ROOT, "telesales").await;
    let contact = admin
        .create(
            "contacts",
            json!({"last_name": "Secret", "email": "needle@hidden.example", "phone": "+44 20 7946 0000"}),
        )
        .await;
    let id = contact["id"].as_str().unwrap();
    let web = WebSession::sign_in(&srv, "tom@example.com", "password-123").await;
    for path in [
        "/records/contacts".to_string(),
        format!("/records/contacts/{id}"),
        format!("/records/contacts/{id}/edit"),
        "/records/contacts/new".to_string(),
        "/records/contacts?columns=last_name,email".to_string(),
    ] {
        let p = web.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}: {}", p.html);
        assert!(
            !p.html.contains("needle@hidden.example"),
            "{path} shows a hidden value"
        );
        assert!(
            !p.html.contains("name=\"email\""),
            "{path} has an input for a hidden field"
        );
        assert!(
            !p.html.contains("name=\"phone\""),
            "{path} lets a read-only field be edited"
        );
    }
    let shown = web.get(&format!("/records/contacts/{id}")).await;
    assert!(
        shown.html.contains("+44 20 7946 0000"),
        "a read-only value is shown"
    );

    // Posting the fields anyway changes nothing the role may not change.
    let edit = web.get(&format!("/records/contacts/{id}/edit")).await;
    let version = input_value(&edit.html, "_version").unwrap();
    let posted = web
        .post(
            &format!("/records/contacts/{id}"),
            &[
                ("_version", &version),
                ("last_name", "Renamed"),
                ("phone", "0"),
                ("email", "x@y.example"),
            ],
        )
        .await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.html);
    let after = admin.get(&format!("/api/v1/records/contacts/{id}")).await;
    assert_eq!(after.body["last_name"], "Renamed");
    assert_eq!(after.body["phone"], "+44 20 7946 0000");
    assert_eq!(after.body["email"], "needle@hidden.example");
}

async fn a_list_filters_sorts_searches_and_pages(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    for i in 0..60 {
        let status = if i % 3 == 0 { "won" } else { "new" };
        admin
            .create(
                "deals",
                json!({"name": format!("Deal {i:02}"), "amount": i * 100, "status": status}),
            )
            .await;
    }
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let rows = |html: &str| html.matches("<tr>").count() - 1;

    let first = web.get("/records/deals?sort=name").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.html);
    assert_eq!(rows(&first.html), 50, "a page holds 50 records");
    assert!(first.html.contains("50 records on this page"));
    let deal_00 = first.html.find("Deal 00").unwrap();
    assert!(
        deal_00 < first.html.find("Deal 01").unwrap(),
        "sorted by name"
    );
    assert!(first.html.contains("aria-sort=\"ascending\""));
    let next = first
        .html
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a next page link")
        .replace("&#38;", "&");
    let second = web.get(&next).await;
    assert_eq!(rows(&second.html), 10, "the rest on page two");
    assert!(second.html.contains("Deal 59"));
    assert!(!second.html.contains("Deal 00"));

    let won = web
        .get("/records/deals?filter%5Bstatus%5D=won&sort=-amount")
        .await;
    assert_eq!(rows(&won.html), 20, "{}", won.html);
    assert!(won.html.find("Deal 57").unwrap() < won.html.find("Deal 54").unwrap());
    // An empty filter box means any value.
    let any = web
        .get("/records/deals?filter%5Bstatus%5D=&q=Deal+07")
        .await;
    assert_eq!(rows(&any.html), 1, "{}", any.html);

    let bad = web.get("/records/deals?filter%5Bamount%5D=lots").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.html.contains("role=\"alert\""),
        "a clear error page: {}",
        bad.html
    );
    assert_eq!(
        web.get("/records/nothing").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn a_status_changes_in_one_click(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let deal = admin.create("deals", json!({"name": "Acme renewal"})).await;
    let id = deal["id"].as_str().unwrap();
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let list = web.get("/records/deals").await;
    assert!(
        list.html
            .contains(&format!("action=\"/records/deals/{id}/set\""))
    );

    // The page script's request: the new buttons come back, the chosen one pressed.
    let csrf = web.csrf.clone();
    let fragment = web
        .post_raw(
            &format!("/records/deals/{id}/set"),
            &[
                ("_csrf", &csrf),
                ("field", "status"),
                ("back", "/records/deals"),
                ("value", "in progress"),
            ],
            true,
        )
        .await;
    assert_eq!(fragment.status, StatusCode::OK, "{}", fragment.html);
    assert!(fragment.html.starts_with("<form class=\"quick\""));
    assert!(
        fragment
            .html
            .contains("value=\"in progress\" aria-pressed=\"true\"")
    );
    let got = admin.get(&format!("/api/v1/records/deals/{id}")).await;
    assert_eq!(got.body["status"], "in progress");

    // Without the script: back to the list.
    let plain = web
        .post(
            &format!("/records/deals/{id}/set"),
            &[
                ("field", "status"),
                ("back", "/records/deals"),
                ("value", "won"),
            ],
        )
        .await;
    assert_eq!(plain.status, StatusCode::SEE_OTHER);
    assert_eq!(plain.location.as_deref(), Some("/records/deals"));
    // A value the picklist does not hold is refused with the reason.
    let wrong = web
        .post(
            &format!("/records/deals/{id}/set"),
            &[("field", "status"), ("value", "dreaming")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let got = admin.get(&format!("/api/v1/records/deals/{id}")).await;
    assert_eq!(got.body["status"], "won");
    assert_eq!(got.body["version"], 3);
}

async fn an_edit_made_on_a_stale_version_comes_back_with_the_newest(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let company = admin.create("companies", json!({"name": "Acme"})).await;
    let id = company["id"].as_str().unwrap();
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let edit = web.get(&format!("/records/companies/{id}/edit")).await;
    let version = input_value(&edit.html, "_version").unwrap();
    admin
        .patch(
            &format!("/api/v1/records/companies/{id}"),
            json!({"name": "Acme Ltd"}),
        )
        .await;
    let stale = web
        .post(
            &format!("/records/companies/{id}"),
            &[("_version", &version), ("name", "Acme Inc")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert!(stale.html.contains("Someone changed this record"));
    assert_eq!(
        input_value(&stale.html, "name").as_deref(),
        Some("Acme Ltd")
    );
    let got = admin.get(&format!("/api/v1/records/companies/{id}")).await;
    assert_eq!(got.body["name"], "Acme Ltd", "the stale edit wrote nothing");
}

async fn a_persian_user_gets_right_to_left_pages_with_persian_digits_and_dates(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let deal = admin
        .create(
            "deals",
            json!({"name": "قرارداد", "amount": 1250, "close_date": "2024-03-20", "status": "in progress"}),
        )
        .await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let english = web.get("/").await;
    assert!(english.html.contains("<html lang=\"en\" dir=\"ltr\">"));

    let saved = web
        .post(
            "/settings",
            &[
                ("locale", "fa"),
                ("digits", "persian"),
                ("calendar", "hijri"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let home = web.get("/").await;
    assert!(
        home.html.contains("<html lang=\"fa\" dir=\"rtl\">"),
        "{}",
        home.html
    );
    assert!(home.html.contains("خانه"), "the menu speaks Persian");
    let shown = web
        .get(&format!("/records/deals/{}", deal["id"].as_str().unwrap()))
        .await;
    assert!(
        shown.html.contains("۱۴۰۳/۰۱/۰۱"),
        "Solar Hijri date, Persian digits"
    );
    assert!(
        shown.html.contains("۱۲۵۰٫۰۰") || shown.html.contains("۱۲۵۰.۰۰"),
        "{}",
        shown.html
    );
    assert!(
        shown.html.contains("در دست کار"),
        "picklist values are translated"
    );
    // Unknown choices are refused; Swahili is one of the choices.
    let bad = web
        .post(
            "/settings",
            &[
                ("locale", "xx"),
                ("digits", "latin"),
                ("calendar", "gregorian"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    web.post(
        "/settings",
        &[
            ("locale", "sw"),
            ("digits", "latin"),
            ("calendar", "gregorian"),
        ],
    )
    .await;
    let swahili = web.get("/").await;
    assert!(swahili.html.contains("<html lang=\"sw\" dir=\"ltr\">"));
    assert!(swahili.html.contains("Mwanzo"));
}

async fn a_plugin_page_shows_the_pipeline_board_and_moves_a_deal(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    admin
        .install_plugin(plugin_package("plugins/pipelines"), &sales)
        .await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    srv.member("sue@example.com", &support, "member").await;
    let deal = sam
        .create(
            "deals",
            json!({"name": "<script>alert(1)</script> Acme", "amount": 5000}),
        )
        .await;
    let id = deal["id"].as_str().unwrap();
    let web = WebSession::sign_in(&srv, "sam@example.com", "password-123").await;
    let home = web.get("/").await;
    assert!(
        home.html
            .contains("href=\"/apps/pipelines/views/board\">Pipeline board</a>"),
        "the plugin's page is in the menu"
    );
    let board = web.get("/apps/pipelines/views/board").await;
    assert_eq!(board.status, StatusCode::OK, "{}", board.html);
    assert!(board.html.contains("data-column=\"lead-in\""));
    assert!(
        board
            .html
            .contains(&format!("href=\"/records/deals/{id}\""))
    );
    assert!(board.html.contains("alert(1)"), "the card is there");
    assert!(
        !board.html.contains("<script>alert"),
        "a plugin's text is escaped, never markup"
    );

    // Moving a card sets the deal's stage through the records service.
    let back = "/apps/pipelines/views/board";
    let moved = web
        .post(
            &format!("/records/deals/{id}/set"),
            &[("field", "stage"), ("value", "proposal"), ("back", back)],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.html);
    assert_eq!(moved.location.as_deref(), Some(back));
    let got = sam.get(&format!("/api/v1/records/deals/{id}")).await;
    assert_eq!(got.body["stage"], "proposal");
    // A move the stage's rules refuse says which fields it needs.
    let refused = web
        .post(
            &format!("/records/deals/{id}/set"),
            &[("field", "stage"), ("value", "won"), ("back", back)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("close_date"), "{}", refused.html);
    assert_eq!(
        sam.get(&format!("/api/v1/records/deals/{id}")).await.body["stage"],
        "proposal"
    );

    // Only declared views are pages; the plugin decides nothing outside them.
    assert_eq!(
        web.get("/apps/pipelines/board").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        web.get("/apps/nothing/views/board").await.status,
        StatusCode::NOT_FOUND
    );
    // Where the plugin is not enabled, there is no menu entry and no page.
    let sue = WebSession::sign_in(&srv, "sue@example.com", "password-123").await;
    assert!(!sue.get("/").await.html.contains("/apps/pipelines"));
    assert_eq!(
        sue.get("/apps/pipelines/views/board").await.status,
        StatusCode::FORBIDDEN
    );
}

async fn an_admin_uploads_approves_and_enables_a_plugin_for_a_department(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    srv.member("sam@example.com", &sales, "member").await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(web.get("/").await.html.contains("href=\"/admin/people\""));

    let broken = web
        .upload("/admin/plugins", "package", b"not a package")
        .await;
    assert_eq!(
        broken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        broken.html
    );
    assert!(broken.html.contains("id=\"admin-error\""));
    let uploaded = web
        .upload(
            "/admin/plugins",
            "package",
            &plugin_package("plugins/pipelines"),
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.html);
    let page = web.get("/admin/plugins").await;
    for what in [
        "Waiting for your approval",
        "add fields to deals: pipeline, stage",
        "check saves of: deals",
        "a page in the menu: Pipeline board",
    ] {
        assert!(
            page.html.contains(what),
            "the review shows {what}: {}",
            page.html
        );
    }
    let approved = web.post("/admin/plugins/pipelines/approve", &[]).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.html);
    let enabled = web
        .post("/admin/plugins/pipelines/enable", &[("department", &sales)])
        .await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER, "{}", enabled.html);
    let info = admin.get("/api/v1/plugins/pipelines").await;
    assert_eq!(info.body["approved"], true);
    assert_eq!(info.body["departments"], json!([sales]));

    // The department's members get its page; they cannot reach the console.
    let sam = WebSession::sign_in(&srv, "sam@example.com", "password-123").await;
    let home = sam.get("/").await;
    assert!(home.html.contains("/apps/pipelines/views/board"));
    assert!(!home.html.contains("href=\"/admin/people\""));
    assert_eq!(
        sam.get("/admin/plugins").await.status,
        StatusCode::FORBIDDEN
    );
    let refused = sam
        .post(
            "/admin/plugins/pipelines/disable",
            &[("department", &sales)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let info = admin.get("/api/v1/plugins/pipelines").await;
    assert_eq!(info.body["departments"], json!([sales]), "nothing changed");
}

async fn the_document_library_uploads_versions_restores_and_locks(backend: Backend) {
    let srv = Server::start(backend).await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = web
        .post("/documents/folders", &[("name", "Offers"), ("parent", "")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let folder_page = created.location.unwrap();
    let folder = folder_page.split("folder=").nth(1).unwrap().to_string();
    let library = web.get(&folder_page).await;
    assert!(library.html.contains("Offers"));
    assert!(library.html.contains("enctype=\"multipart/form-data\""));

    // Without the session's token in its address, an upload is refused and stores nothing.
    let forged = web
        .multipart(
            &format!("/documents/upload?folder={folder}"),
            &[("title", "Forged")],
            "file",
            b"x",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let csrf = web.csrf.clone();
    let uploaded = web
        .multipart(
            &format!("/documents/upload?folder={folder}&_csrf={csrf}"),
            &[("title", "Acme offer")],
            "file",
            b"version one",
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.html);
    let doc_page = uploaded.location.unwrap();
    let id = doc_page.rsplit('/').next().unwrap().to_string();
    let listed = web.get(&folder_page).await;
    assert!(listed.html.contains("Acme offer"));
    assert!(!listed.html.contains("Forged"));

    let second = web
        .multipart(
            &format!("/documents/{id}/versions?_csrf={csrf}"),
            &[("reason", "new prices")],
            "file",
            b"version two",
        )
        .await;
    assert_eq!(second.status, StatusCode::SEE_OTHER, "{}", second.html);
    let shown = web.get(&doc_page).await;
    assert!(shown.html.contains("new prices"));
    assert!(
        shown
            .html
            .contains(&format!("/documents/{id}/versions/1/content"))
    );
    let first = web
        .get(&format!("/documents/{id}/versions/1/content"))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.html, "version one");

    let restored = web
        .post(&format!("/documents/{id}/restore"), &[("version", "1")])
        .await;
    assert_eq!(restored.status, StatusCode::SEE_OTHER, "{}", restored.html);
    let admin = srv.admin().await;
    let doc = admin.get(&format!("/api/v1/documents/{id}")).await;
    assert_eq!(doc.body["version"], 3, "a restore is a new version");
    let current = web
        .get(&format!("/documents/{id}/versions/3/content"))
        .await;
    assert_eq!(current.html, "version one");

    let locked = web.post(&format!("/documents/{id}/lock"), &[]).await;
    assert_eq!(locked.status, StatusCode::SEE_OTHER);
    let shown = web.get(&doc_page).await;
    assert!(
        shown.html.contains("Checked out by Administrator"),
        "{}",
        shown.html
    );
    web.post(&format!("/documents/{id}/unlock"), &[]).await;
    let doc = admin.get(&format!("/api/v1/documents/{id}")).await;
    assert!(doc.body["locked_by"].is_null(), "{}", doc.body);
}

async fn the_calendar_shows_a_persons_activities_and_warns_of_double_bookings(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let (sam_id, sam) = srv.member("sam@example.com", ROOT, "member").await;
    let me = admin.get("/api/v1/auth/me").await.body["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for (topic, start, end, who) in [
        (
            "Demo at Acme",
            "2026-11-24T09:00:00Z",
            "2026-11-24T10:00:00Z",
            me.as_str(),
        ),
        (
            "Call Leyla",
            "2026-11-24T09:30:00Z",
            "2026-11-24T09:45:00Z",
            me.as_str(),
        ),
        (
            "Review offer",
            "2026-11-26T14:00:00Z",
            "2026-11-26T15:00:00Z",
            me.as_str(),
        ),
        (
            "Sam's visit",
            "2026-11-24T09:00:00Z",
            "2026-11-24T10:00:00Z",
            sam_id.as_str(),
        ),
    ] {
        let body = json!({"kind": "meeting", "topic": topic, "starts_at": start, "ends_at": end, "assigned_to": who});
        let res = admin.post("/api/v1/records/activities", body).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    }
    drop(sam);
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let week = web.get("/calendar?view=week&date=2026-11-25").await;
    assert_eq!(week.status, StatusCode::OK, "{}", week.html);
    for topic in ["Demo at Acme", "Call Leyla", "Review offer"] {
        assert!(week.html.contains(topic), "{topic} in the week");
    }
    assert!(
        !week.html.contains("Sam&#39;s visit") && !week.html.contains("visit"),
        "only mine by default"
    );
    assert!(
        week.html.contains("2 activities are double booked."),
        "{}",
        week.html
    );
    assert!(week.html.contains("double booked with “Demo at Acme”"));
    assert_eq!(week.html.matches("class=\"cal-day").count(), 7);

    let day = web.get("/calendar?view=day&date=2026-11-26").await;
    assert!(day.html.contains("Review offer") && !day.html.contains("Demo at Acme"));
    let month = web.get("/calendar?view=month&date=2026-11-10").await;
    assert_eq!(
        month.html.matches("class=\"cal-day").count(),
        42,
        "whole weeks around November"
    );
    let sams = web
        .get(&format!(
            "/calendar?view=week&date=2026-11-24&who=user:{sam_id}"
        ))
        .await;
    assert!(sams.html.contains("visit") && !sams.html.contains("Call Leyla"));
    assert!(!sams.html.contains("id=\"clashes\""));
}

async fn a_task_is_taken_and_completed_from_the_inbox(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let (sam_id, _) = srv.member("sam@example.com", ROOT, "member").await;
    let published = admin
        .put(
            "/api/v1/processes/call-back",
            json!({
                "name": "Call back",
                "nodes": [
                    {"id": "start", "type": "start"},
                    {"id": "call", "name": "Call the customer back", "type": "user_task",
                     "assignee": {"user": sam_id}, "fields": ["summary"], "outcomes": ["reached", "no answer"]},
                    {"id": "end", "type": "end"}
                ],
                "flows": [
                    {"id": "f1", "from": "start", "to": "call"},
                    {"id": "f2", "from": "call", "to": "end"}
                ]
            }),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    let started = admin
        .post("/api/v1/processes/call-back/instances", json!({}))
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let instance = started.body["id"].as_str().unwrap().to_string();
    let sam = WebSession::sign_in(&srv, "sam@example.com", "password-123").await;
    let inbox = eventually(std::time::Duration::from_secs(20), "sam's task", || async {
        let page = sam.get("/tasks").await;
        page.html.contains("Call the customer back").then_some(page)
    })
    .await;
    let task = inbox
        .html
        .split("id=\"task-")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert!(
        inbox.html.contains("name=\"var.summary\""),
        "the value it asks for"
    );
    assert!(inbox.html.contains("value=\"no answer\""), "its outcomes");
    // Another member, not its assignee, may not take it.
    srv.member("bob@example.com", ROOT, "member").await;
    let bob = WebSession::sign_in(&srv, "bob@example.com", "password-123").await;
    assert!(
        !bob.get("/tasks")
            .await
            .html
            .contains("Call the customer back")
    );
    let refused = bob.post(&format!("/tasks/{task}/claim"), &[]).await;
    assert!(refused.status.is_client_error(), "{}", refused.status);

    let claimed = sam.post(&format!("/tasks/{task}/claim"), &[]).await;
    assert_eq!(claimed.status, StatusCode::SEE_OTHER, "{}", claimed.html);
    let done = sam
        .post(
            &format!("/tasks/{task}/complete"),
            &[
                ("var.summary", "Will order in December"),
                ("outcome", "reached"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert!(
        !sam.get("/tasks")
            .await
            .html
            .contains("Call the customer back")
    );
    let finished = eventually(
        std::time::Duration::from_secs(20),
        "the instance to end",
        || async {
            let got = admin
                .get(&format!("/api/v1/process-instances/{instance}"))
                .await;
            (got.body["status"] == "completed").then_some(got)
        },
    )
    .await;
    assert_eq!(
        finished.body["variables"]["summary"],
        "Will order in December"
    );
}

async fn an_admin_adds_a_department_and_a_user_and_reads_the_role_matrix(backend: Backend) {
    let srv = Server::start(backend).await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = web.get("/admin/people").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("org_admin") && page.html.contains("read_only"),
        "the built-in roles"
    );
    assert!(
        page.html.contains("<th scope=\"col\">contacts</th>")
            || page.html.contains("<th scope=\"col\">*</th>")
    );

    let added = web
        .post("/admin/departments", &[("name", "Support"), ("parent", "")])
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.html);
    let admin = srv.admin().await;
    let departments = admin.get("/api/v1/departments").await.body;
    let support = departments
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "Support")
        .expect("the new department")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bad = web
        .post(
            "/admin/users",
            &[
                ("name", "Sue"),
                ("email", "not-an-email"),
                ("password", "password-123"),
                ("department", &support),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("id=\"admin-error\"") && bad.html.contains("email"));
    let good = web
        .post(
            "/admin/users",
            &[
                ("name", "Sue"),
                ("email", "sue@example.com"),
                ("password", "password-123"),
                ("department", &support),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.html);
    let page = web.get("/admin/people").await;
    assert!(page.html.contains("sue@example.com"));
    assert!(page.html.contains("Support: member"), "{}", page.html);
    // Sue signs in; she is no admin.
    let sue = WebSession::sign_in(&srv, "sue@example.com", "password-123").await;
    assert_eq!(sue.get("/admin/people").await.status, StatusCode::FORBIDDEN);
    let refused = sue
        .post("/admin/departments", &[("name", "Mine"), ("parent", "")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

async fn the_reports_page_shows_key_figures_and_draws_a_saved_report(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let (ann, _) = srv.member("ann@example.com", ROOT, "member").await;
    for (name, amount) in [("Acme <renewal>", 5000), ("Beta", 2000)] {
        admin
            .create(
                "deals",
                json!({"name": name, "amount": amount, "status": "won",
                       "close_date": "2026-11-10", "owner": ann}),
            )
            .await;
    }
    admin
        .create(
            "quotas",
            json!({"user": ann, "starts_on": "2026-11-01", "amount": 10000}),
        )
        .await;
    let saved = admin
        .post(
            "/api/v1/reports",
            json!({"name": "Won by deal", "object": "deals", "group_by": ["name"],
                   "measures": ["sum:amount"], "chart": "bar"}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let page = web.get("/reports?from=2026-11-01&to=2026-12-01").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("href=\"/reports\""), "in the menu");
    assert!(page.html.contains("<svg"), "the chart inline");
    assert!(page.html.contains("Won against quota"));
    let table = &page.html[page.html.find("id=\"kpi-managers\"").unwrap()..];
    assert!(table.contains("ann@example.com"), "{table}");
    assert!(
        table.contains("<td>7000</td>")
            && table.contains("<td>10000</td>")
            && table.contains("<td>70%</td>"),
        "{table}"
    );
    assert!(page.html.contains("Won by deal"));
    let id = saved.body["id"].as_str().unwrap();
    let report = web.get(&format!("/reports/{id}")).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.html);
    assert!(
        report.html.contains("Acme &lt;renewal&gt;"),
        "escaped: {}",
        report.html
    );
    assert!(!report.html.contains("<renewal>"));
    assert!(report.html.contains("<rect"), "bars");
    assert_eq!(web.get("/reports/nope").await.status, StatusCode::NOT_FOUND);
    let bad = web.get("/reports?from=someday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let board = admin
        .post(
            "/api/v1/dashboards",
            json!({"name": "Sales board", "reports": [id, id.to_string() + "x"]}),
        )
        .await;
    assert_eq!(
        board.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an unknown report"
    );
    let board = admin
        .post(
            "/api/v1/dashboards",
            json!({"name": "Sales board", "reports": [id]}),
        )
        .await;
    let listed = web.get("/reports").await;
    assert!(listed.html.contains("Sales board"), "{}", listed.html);
    let shown = web
        .get(&format!(
            "/dashboards/{}",
            board.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.html);
    assert!(shown.html.contains("Won by deal") && shown.html.contains("<svg"));
}

async fn the_notifications_page_shows_what_i_was_told_and_what_changed(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let (sam_id, sam) = srv.member("sam@example.com", ROOT, "member").await;
    let deal = admin
        .create("deals", json!({"name": "Acme <renewal>", "owner": sam_id}))
        .await;
    eventually(
        std::time::Duration::from_secs(20),
        "Sam's notification",
        || async {
            let got = sam.get("/api/v1/notifications").await;
            (!got.body["items"].as_array()?.is_empty()).then_some(())
        },
    )
    .await;
    let web = WebSession::sign_in(&srv, "sam@example.com", "password-123").await;
    let page = web.get("/notifications").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("href=\"/notifications\""), "in the menu");
    let told = &page.html[page.html.find("id=\"notifications\"").unwrap()..];
    assert!(
        told.contains("Deal assigned to you: Acme &#60;renewal&#62;"),
        "{told}"
    );
    assert!(told.contains(&format!(
        "href=\"/records/deals/{}\"",
        deal["id"].as_str().unwrap()
    )));
    assert!(told.contains("class=\"unread\""));
    let changes = &page.html[page.html.find("id=\"changes\"").unwrap()..];
    assert!(changes.contains("Administrator created"), "{changes}");
    assert!(changes.contains("Acme &#60;renewal&#62;"));

    // Marked read in one click, with the form's CSRF token only.
    let forged = web.post_raw("/notifications/read-all", &[], false).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let done = web.post("/notifications/read-all", &[]).await;
    assert_eq!(done.location.as_deref(), Some("/notifications"));
    let page = web.get("/notifications").await;
    assert!(!page.html.contains("class=\"unread\""), "{}", page.html);
    let unread = sam.get("/api/v1/notifications?unread=true").await;
    assert_eq!(unread.body["items"], json!([]));
    // No SMTP here: the settings offer no email box.
    let settings = web.get("/settings").await;
    assert!(!settings.html.contains("email_notifications"));
}

async fn an_import_is_uploaded_mapped_checked_and_run_from_its_page(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let list = web.get("/imports").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.html.contains("<option value=\"contacts\" selected>"));
    let csv = b"Last Name,Email,Phone\nKarimi,leyla@example.com,+98 21 0000001\n\
                Otieno,not-an-email,+254 20 0000002\nNovak,jan@example.com,\n";

    // Without the session's token in its address, nothing is stored.
    let forged = web
        .multipart("/imports/upload", &[("object", "contacts")], "file", csv)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let csrf = web.csrf.clone();
    let uploaded = web
        .multipart(
            &format!("/imports/upload?_csrf={csrf}"),
            &[("object", "contacts")],
            "file",
            csv,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.html);
    let import_page = uploaded.location.unwrap();
    let id = import_page.rsplit('/').next().unwrap().to_string();
    // The suggested mapping is chosen on the page; email identifies duplicates.
    let shown = web.get(&import_page).await;
    assert!(
        shown.html.contains("<option value=\"last_name\" selected>"),
        "{}",
        shown.html
    );
    assert!(shown.html.contains("<option value=\"email\" selected>"));
    let mapping = [
        ("column-0", "last_name"),
        ("column-1", "email"),
        ("column-2", "phone"),
        ("match_on", "email"),
        ("on_duplicate", "update"),
    ];

    // Leaving the required last name out is refused on the page, with the reason.
    let refused = web
        .post(
            &format!("/imports/{id}/run"),
            &[("column-0", ""), ("column-1", "email"), ("dry_run", "1")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("last_name"), "{}", refused.html);

    // The check writes nothing and lists the bad row with its reason.
    let mut check = mapping.to_vec();
    check.push(("dry_run", "1"));
    let checking = web.post(&format!("/imports/{id}/run"), &check).await;
    assert_eq!(checking.status, StatusCode::SEE_OTHER, "{}", checking.html);
    let checked = eventually(std::time::Duration::from_secs(30), "the check", || async {
        let page = web.get(&import_page).await;
        page.html
            .contains("<span id=\"import-status\">checked</span>")
            .then_some(page)
    })
    .await;
    assert!(
        checked.html.contains("<td>3</td><td>email:"),
        "{}",
        checked.html
    );
    let contacts = admin.get("/api/v1/records/contacts").await;
    assert_eq!(contacts.body["items"].as_array().unwrap().len(), 0);

    let mut real = mapping.to_vec();
    real.push(("dry_run", "0"));
    let running = web.post(&format!("/imports/{id}/run"), &real).await;
    assert_eq!(running.status, StatusCode::SEE_OTHER, "{}", running.html);
    let done = eventually(std::time::Duration::from_secs(30), "the import", || async {
        let page = web.get(&import_page).await;
        page.html
            .contains("<span id=\"import-status\">done</span>")
            .then_some(page)
    })
    .await;
    assert!(
        done.html
            .contains("<span class=\"count\">2</span> <span>created</span>"),
        "{}",
        done.html
    );
    assert!(
        done.html
            .contains("<span class=\"count\">1</span> <span>refused</span>")
    );
    let contacts = admin.get("/api/v1/records/contacts?sort=last_name").await;
    let names: Vec<&str> = contacts.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["last_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Karimi", "Novak"]);

    // Someone else's import is not there for another user.
    admin
        .post("/api/v1/users", json!({"email": "ann@example.com", "name": "Ann", "password": "password-123", "department": ROOT, "role": "member"}))
        .await;
    let ann = WebSession::sign_in(&srv, "ann@example.com", "password-123").await;
    assert_eq!(ann.get(&import_page).await.status, StatusCode::NOT_FOUND);
    assert!(!ann.get("/imports").await.html.contains(&id));
    let theirs = ann.post(&format!("/imports/{id}/delete"), &[]).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    let removed = web.post(&format!("/imports/{id}/delete"), &[]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(removed.location.as_deref(), Some("/imports"));
    assert!(!web.get("/imports").await.html.contains(&id));
}

async fn an_admin_subscribes_a_webhook_reads_its_log_and_replays_a_delivery(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let empty = web.get("/admin/webhooks").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.html.contains("id=\"create-webhook\""));

    // Every problem at once, the form kept as typed.
    let refused = web
        .post("/admin/webhooks", &[("url", "ftp://hooks.example/in")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("url:"), "{}", refused.html);
    assert!(refused.html.contains("events:"));
    assert!(refused.html.contains("value=\"ftp://hooks.example/in\""));

    // Nothing listens on port 9: deliveries fail and wait for their next attempt.
    let made = web
        .post(
            "/admin/webhooks",
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("events", "record.created"),
                ("objects", "contacts"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.html);
    let secret = made
        .html
        .split("<code id=\"webhook-secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the secret is shown once")
        .to_string();
    assert_eq!(secret.len(), 64);
    let hooks = admin.get("/api/v1/webhooks").await;
    let id = hooks.body[0]["id"].as_str().unwrap().to_string();
    assert_eq!(hooks.body[0]["objects"], json!(["contacts"]));
    let hook_page = format!("/admin/webhooks/{id}");
    let later = web.get(&hook_page).await;
    assert!(
        !later.html.contains(&secret),
        "the secret is not shown again"
    );

    admin
        .create("contacts", json!({"last_name": "Karimi"}))
        .await;
    let logged = eventually(std::time::Duration::from_secs(30), "a delivery", || async {
        let page = web.get(&hook_page).await;
        page.html.contains("id=\"delivery-").then_some(page)
    })
    .await;
    assert!(logged.html.contains("record.created"));
    assert!(logged.html.contains("Karimi"), "the body is shown");
    let delivery = logged
        .html
        .split("id=\"delivery-")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let replayed = web
        .post(
            &format!("/admin/webhooks/{id}/deliveries/{delivery}/replay"),
            &[],
        )
        .await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER, "{}", replayed.html);
    let delivered_only = web.get(&format!("{hook_page}?status=delivered")).await;
    assert!(
        !delivered_only.html.contains(&delivery),
        "filtered by status"
    );

    // Paused: unticking "active".
    let paused = web
        .post(
            &hook_page,
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("events", "record.created"),
                ("events", "record.deleted"),
            ],
        )
        .await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER, "{}", paused.html);
    let hook = admin.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(hook.body["active"], false);
    assert_eq!(
        hook.body["events"],
        json!(["record.created", "record.deleted"])
    );
    assert_eq!(hook.body["objects"], json!([]));

    // Not for members.
    admin
        .post("/api/v1/users", json!({"email": "ann@example.com", "name": "Ann", "password": "password-123", "department": ROOT, "role": "member"}))
        .await;
    let ann = WebSession::sign_in(&srv, "ann@example.com", "password-123").await;
    assert_eq!(
        ann.get("/admin/webhooks").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(ann.get(&hook_page).await.status, StatusCode::FORBIDDEN);
    let theirs = ann.post(&format!("{hook_page}/delete"), &[]).await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);

    let removed = web.post(&format!("{hook_page}/delete"), &[]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let hooks = admin.get("/api/v1/webhooks").await;
    assert_eq!(hooks.body, json!([]));
}

async fn a_report_and_a_dashboard_are_made_from_their_forms(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    for (name, status, amount) in [
        ("Acme", "won", 5000),
        ("Beta", "won", 2000),
        ("Gamma", "new", 700),
    ] {
        admin
            .create(
                "deals",
                json!({"name": name, "status": status, "amount": amount}),
            )
            .await;
    }
    let (_, ann_api) = srv.member("ann@example.com", ROOT, "member").await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let form = web.get("/reports/new?object=deals").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.html);
    assert!(
        form.html.contains("<option value=\"status\">"),
        "{}",
        form.html
    );
    assert!(form.html.contains("<option value=\"close_date:month\">"));
    assert!(form.html.contains("<option value=\"sum:amount\">"));
    assert!(
        !form.html.contains("<option value=\"sum:name\">"),
        "only numbers are summed"
    );

    // Every refused part beside its input, what was typed kept.
    let refused = web
        .post(
            "/reports",
            &[
                ("object", "deals"),
                ("name", ""),
                ("group_1", "status"),
                ("measures", "sum:amount"),
                ("filter", "filter[nope]=1"),
                ("chart", "line"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.html.contains("id=\"err-name\""), "{}", refused.html);
    assert!(refused.html.contains("id=\"err-filter\""));
    assert!(refused.html.contains("<option value=\"status\" selected>"));

    let made = web
        .post(
            "/reports",
            &[
                ("object", "deals"),
                ("name", "Deals by status"),
                ("group_1", "status"),
                ("group_2", ""),
                ("measures", "count"),
                ("measures", "sum:amount"),
                ("filter", ""),
                ("chart", "bar"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let report_page = made.location.unwrap();
    let id = report_page.rsplit('/').next().unwrap().to_string();
    let shown = web.get(&report_page).await;
    assert!(
        shown.html.contains("<td>won</td><td>2</td><td>7000</td>"),
        "{}",
        shown.html
    );
    assert!(shown.html.contains("id=\"delete-report\""));
    let saved = admin.get(&format!("/api/v1/reports/{id}")).await;
    assert_eq!(saved.body["group_by"], json!(["status"]));
    assert_eq!(saved.body["measures"], json!(["count", "sum:amount"]));
    assert_eq!(saved.body["shared"], false);

    let refused = web.post("/dashboards", &[("name", "Board")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.html.contains("id=\"err-reports\""),
        "{}",
        refused.html
    );
    let board = web
        .post("/dashboards", &[("name", "Sales board"), ("reports", &id)])
        .await;
    assert_eq!(board.status, StatusCode::SEE_OTHER, "{}", board.html);
    let board_page = board.location.unwrap();
    let tiles = web.get(&board_page).await;
    assert!(tiles.html.contains("Deals by status") && tiles.html.contains("<svg"));

    // Not shared: not there for Ann, and not hers to remove.
    assert_eq!(
        ann_api.get(&format!("/api/v1/reports/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let ann = WebSession::sign_in(&srv, "ann@example.com", "password-123").await;
    assert_eq!(
        ann.post(&format!("/reports/{id}/delete"), &[]).await.status,
        StatusCode::NOT_FOUND
    );

    let board_id = board_page.rsplit('/').next().unwrap().to_string();
    let gone = web
        .post(&format!("/dashboards/{board_id}/delete"), &[])
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    let gone = web.post(&format!("/reports/{id}/delete"), &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(
        admin.get(&format!("/api/v1/reports/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn an_admin_deactivates_a_user_and_replays_a_plugins_dead_letter(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let (ann, ann_api) = srv.member("ann@example.com", ROOT, "member").await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let people = web.get("/admin/people").await;
    assert!(
        people.html.contains(&format!("id=\"deactivate-{ann}\"")),
        "{}",
        people.html
    );
    let me = admin.get("/api/v1/auth/me").await;
    let me = me.body["id"].as_str().unwrap().to_string();
    assert!(
        !people.html.contains(&format!("id=\"deactivate-{me}\"")),
        "not oneself"
    );

    let off = web
        .post(&format!("/admin/users/{ann}/deactivate"), &[])
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.html);
    assert_eq!(
        ann_api.get("/api/v1/auth/me").await.status,
        StatusCode::UNAUTHORIZED,
        "signed out everywhere"
    );
    let people = web.get("/admin/people").await;
    assert!(people.html.contains(&format!("id=\"activate-{ann}\"")));
    let myself = web
        .post(&format!("/admin/users/{me}/deactivate"), &[])
        .await;
    assert_eq!(myself.status, StatusCode::CONFLICT);
    let on = web.post(&format!("/admin/users/{ann}/activate"), &[]).await;
    assert_eq!(on.status, StatusCode::SEE_OTHER);
    let user = admin.get(&format!("/api/v1/users/{ann}")).await;
    assert_eq!(user.body["active"], true);
    let ann_web = WebSession::sign_in(&srv, "ann@example.com", "password-123").await;
    assert_eq!(
        ann_web
            .post(&format!("/admin/users/{me}/deactivate"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // A plugin's after-save hook that refuses a change every time: the admin sees it
    // on the plugins page and sends it again (refused again, with the reason).
    admin
        .install_plugin(plugin_package("tests/plugins/hostile"), ROOT)
        .await;
    admin
        .create("companies", json!({"name": "after-save-fails"}))
        .await;
    let letters = eventually(
        std::time::Duration::from_secs(60),
        "a dead letter",
        || async {
            let res = admin.get("/api/v1/plugins/hostile/dead-letters").await;
            (!res.body.as_array().unwrap().is_empty()).then_some(res.body)
        },
    )
    .await;
    let letter = letters[0]["id"].as_str().unwrap().to_string();
    let plugins = web.get("/admin/plugins").await;
    assert!(
        plugins.html.contains("id=\"dead-letters-hostile\""),
        "{}",
        plugins.html
    );
    assert!(plugins.html.contains("asked to fail"));
    let again = web
        .post(
            &format!("/admin/plugins/hostile/dead-letters/{letter}/replay"),
            &[],
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.html);
    assert!(
        again.html.contains("Refused again: asked to fail"),
        "{}",
        again.html
    );
}

async fn a_reference_select_finds_more_records_by_name_within_the_visitors_rights(
    backend: Backend,
) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    for (name, dept) in [
        ("Acme <Trading>", &sales),
        ("Beta", &sales),
        ("Zeta", &support),
    ] {
        admin
            .create("companies", json!({"name": name, "department": dept}))
            .await;
    }
    admin
        .post("/api/v1/users", json!({"email": "sam@example.com", "name": "Sam", "password": "password-123", "department": sales, "role": "member"}))
        .await;
    let sam = WebSession::sign_in(&srv, "sam@example.com", "password-123").await;
    let form = sam.get("/records/contacts/new").await;
    assert!(
        form.html
            .contains("data-search=\"/records/companies/choices\""),
        "{}",
        form.html
    );
    let found = sam.get("/records/companies/choices?q=acme").await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.html);
    assert!(
        found.html.contains(">Acme &#60;Trading&#62;</option>")
            && !found.html.contains("<Trading>"),
        "escaped: {}",
        found.html
    );
    assert!(!found.html.contains("Beta"));
    let hidden = sam.get("/records/companies/choices?q=zeta").await;
    assert!(
        !hidden.html.contains("Zeta"),
        "another department's: {}",
        hidden.html
    );
    let all = sam.get("/records/companies/choices").await;
    assert_eq!(all.html.matches("<option").count(), 2, "{}", all.html);
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(
        web.get("/records/companies/choices?q=zeta")
            .await
            .html
            .contains(">Zeta</option>")
    );
    assert_eq!(
        sam.get("/records/nope/choices?q=a").await.status,
        StatusCode::NOT_FOUND
    );
    let anonymous = page(client().get(srv.url("/records/companies/choices?q=a"))).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
}

/// The option chosen in the select named `name` ("" when the empty one is).
fn chosen(html: &str, name: &str) -> String {
    let start = html
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no select {name}"));
    let select = &html[start..start + html[start..].find("</select>").expect("a closed select")];
    let at = select.find(" selected>").expect("an option is chosen");
    let value = &select[..at];
    let from = value.rfind("value=\"").expect("the option has a value") + 7;
    value[from..value.len() - 1].to_string()
}

async fn an_admin_edits_a_roles_rights_and_field_rights_on_its_page(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let people = web.get("/admin/people").await;
    assert!(
        people.html.contains("href=\"/admin/roles/new\""),
        "{}",
        people.html
    );
    assert!(people.html.contains("href=\"/admin/roles/member\""));
    let blank = web.get("/admin/roles/new").await;
    assert_eq!(blank.status, StatusCode::OK, "{}", blank.html);
    assert_eq!(chosen(&blank.html, "p:contacts:read"), "");
    assert_eq!(chosen(&blank.html, "f:deals:amount"), "");
    assert_eq!(chosen(&blank.html, "p:*:export"), "");

    // Every refusal at once, each beside its input; what was typed stays; nothing saved.
    let refused = web
        .post(
            "/admin/roles",
            &[
                ("name", "Field Sales"),
                ("label", " "),
                ("org", "own"),
                ("p:contacts:read", "department"),
                ("p:nope:read", "all"),
                ("f:contacts:shoe_size", "write"),
                ("p:deals:read", "everything"),
            ],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.html
    );
    for id in [
        "err-name",
        "err-label",
        "err-org",
        "err-rights-nope",
        "err-rights-deals",
    ] {
        assert!(
            refused.html.contains(&format!("id=\"{id}\"")),
            "{id}: {}",
            refused.html
        );
    }
    assert!(
        refused.html.contains("is not a field of contacts"),
        "{}",
        refused.html
    );
    assert!(
        refused
            .html
            .contains("<details id=\"fields-contacts\" open>"),
        "the refused field is shown"
    );
    assert!(refused.html.contains("value=\"Field Sales\""));
    assert_eq!(chosen(&refused.html, "p:contacts:read"), "department");
    let roles = admin.get("/api/v1/roles").await;
    assert!(!roles.body.to_string().contains("Field Sales"));

    // A valid role: its rights as the API shows them, and as its page shows them.
    let made = web
        .post(
            "/admin/roles",
            &[
                ("name", "field_sales"),
                ("label", "Field sales"),
                ("description", "Sells on the road"),
                ("org", ""),
                ("p:contacts:read", "department"),
                ("p:contacts:create", "own"),
                ("p:contacts:update", "own"),
                ("p:deals:read", "department"),
                ("p:deals:update", ""),
                ("f:contacts:email", "hidden"),
                ("f:contacts:phone", ""),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    assert_eq!(
        made.location.as_deref(),
        Some("/admin/roles/field_sales?done=1")
    );
    let role = admin.get("/api/v1/roles/field_sales").await;
    assert_eq!(
        role.body["permissions"],
        json!({"contacts": {"read": "department", "create": "own", "update": "own"}, "deals": {"read": "department"}})
    );
    assert_eq!(
        role.body["fields"],
        json!({"contacts": {"email": "hidden"}})
    );
    let shown = web.get("/admin/roles/field_sales?done=1").await;
    assert!(shown.html.contains("role=\"status\""), "saved is said");
    assert_eq!(chosen(&shown.html, "p:contacts:create"), "own");
    assert_eq!(chosen(&shown.html, "p:deals:read"), "department");
    assert_eq!(chosen(&shown.html, "p:deals:delete"), "");
    assert_eq!(chosen(&shown.html, "f:contacts:email"), "hidden");
    assert!(shown.html.contains("<details id=\"fields-contacts\" open>"));

    // The rights apply to a holder at once: the hidden email, then readable.
    let contact = admin
        .create(
            "contacts",
            json!({"last_name": "Okafor", "email": "ada@example.com"}),
        )
        .await;
    let id = contact["id"].as_str().unwrap().to_string();
    let (_sam, sam) = srv.member("sam@example.com", ROOT, "field_sales").await;
    let seen = sam.get(&format!("/api/v1/records/contacts/{id}")).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(seen.body["last_name"], "Okafor", "{}", seen.body);
    admin.create("deals", json!({"name": "Road deal"})).await;
    let deals = sam.get("/api/v1/records/deals").await;
    assert_eq!(
        deals.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        deals.body
    );
    assert!(seen.body.get("email").is_none(), "{}", seen.body);
    let changed = web
        .post(
            "/admin/roles/field_sales",
            &[
                ("label", "Field sales"),
                ("p:contacts:read", "department"),
                ("f:contacts:email", "read"),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.html);
    let seen = sam.get(&format!("/api/v1/records/contacts/{id}")).await;
    assert_eq!(seen.body["email"], "ada@example.com", "{}", seen.body);
    let deals = sam.get("/api/v1/records/deals").await;
    assert_eq!(
        deals.body["items"],
        json!([]),
        "deals were taken away: {}",
        deals.body
    );

    // Built-in roles are shown, not changed; members may do neither.
    let builtin = web.get("/admin/roles/member").await;
    assert!(builtin.html.contains("id=\"role-builtin\""));
    assert!(builtin.html.contains(" disabled>"));
    assert!(!builtin.html.contains("id=\"save-role\""));
    let refused = web
        .post(
            "/admin/roles/member",
            &[("label", "Everyone"), ("p:*:delete", "all")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.html);
    let sam_web = WebSession::sign_in(&srv, "sam@example.com", "password-123").await;
    assert_eq!(
        sam_web.get("/admin/roles/field_sales").await.status,
        StatusCode::FORBIDDEN
    );
    let forbidden = sam_web
        .post(
            "/admin/roles/field_sales",
            &[("label", "Mine"), ("org", "all")],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        web.get("/admin/roles/nobody").await.status,
        StatusCode::NOT_FOUND
    );

    // A held role is kept; one nobody holds is deleted.
    let held = web.post("/admin/roles/field_sales/delete", &[]).await;
    assert_eq!(held.status, StatusCode::CONFLICT, "{}", held.html);
    let temp = web
        .post("/admin/roles", &[("name", "temp"), ("label", "Temporary")])
        .await;
    assert_eq!(temp.status, StatusCode::SEE_OTHER, "{}", temp.html);
    let gone = web.post("/admin/roles/temp/delete", &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(
        admin.get("/api/v1/roles/temp").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn an_owner_shares_a_record_from_its_page_and_stops_sharing(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    let (_ann, ann) = srv.member("ann@example.com", &sales, "member").await;
    let (bob, bob_api) = srv.member("bob@example.com", &support, "member").await;
    let contact = ann.create("contacts", json!({"last_name": "Mwangi"})).await;
    let id = contact["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/records/contacts/{id}");
    assert_eq!(
        bob_api.get(&path).await.status,
        StatusCode::NOT_FOUND,
        "another department's"
    );

    let ann_web = WebSession::sign_in(&srv, "ann@example.com", "password-123").await;
    let page_path = format!("/records/contacts/{id}");
    let own = ann_web.get(&page_path).await;
    assert!(
        own.html.contains("id=\"share-form\""),
        "the owner may share: {}",
        own.html
    );
    assert!(own.html.contains(&format!("value=\"user:{bob}\"")));
    assert!(
        own.html
            .contains(&format!("value=\"department:{support}\""))
    );

    // Read only: Bob reads it and may not change it.
    let shared = ann_web
        .post(
            &format!("{page_path}/shares"),
            &[("with", &format!("user:{bob}")), ("access", "read")],
        )
        .await;
    assert_eq!(shared.status, StatusCode::SEE_OTHER, "{}", shared.html);
    assert_eq!(
        shared.location.as_deref(),
        Some(format!("{page_path}#sharing").as_str())
    );
    assert_eq!(bob_api.get(&path).await.status, StatusCode::OK);
    let refused = bob_api.patch(&path, json!({"first_name": "Asha"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let listed = ann_web.get(&page_path).await;
    assert!(listed.html.contains("bob@example.com"), "{}", listed.html);

    // Bob sees whom it is shared with, but may not share it on.
    let bob_web = WebSession::sign_in(&srv, "bob@example.com", "password-123").await;
    let seen = bob_web.get(&page_path).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(!seen.html.contains("id=\"share-form\""));
    let on = bob_web
        .post(
            &format!("{page_path}/shares"),
            &[
                ("with", &format!("department:{support}")),
                ("access", "write"),
            ],
        )
        .await;
    assert_eq!(on.status, StatusCode::FORBIDDEN, "{}", on.html);

    // Sharing again changes the access: now Bob may change it.
    let write = ann_web
        .post(
            &format!("{page_path}/shares"),
            &[("with", &format!("user:{bob}")), ("access", "write")],
        )
        .await;
    assert_eq!(write.status, StatusCode::SEE_OTHER);
    let changed = bob_api.patch(&path, json!({"first_name": "Asha"})).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let shares = ann.get(&format!("{path}/shares")).await;
    assert_eq!(
        shares.body.as_array().map(Vec::len),
        Some(1),
        "one share, changed: {}",
        shares.body
    );

    // A forged target is refused with its reason; nothing is shared.
    let forged = ann_web
        .post(
            &format!("{page_path}/shares"),
            &[("with", "everyone"), ("access", "write")],
        )
        .await;
    assert_eq!(
        forged.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        forged.html
    );
    assert!(
        forged
            .html
            .contains("give exactly one of user and department"),
        "{}",
        forged.html
    );

    // Stop sharing: Bob no longer finds it.
    let share = shares.body[0]["id"].as_str().unwrap().to_string();
    let stopped = ann_web
        .post(&format!("{page_path}/shares/{share}/delete"), &[])
        .await;
    assert_eq!(stopped.status, StatusCode::SEE_OTHER, "{}", stopped.html);
    assert_eq!(bob_api.get(&path).await.status, StatusCode::NOT_FOUND);
    let again = ann_web
        .post(&format!("{page_path}/shares/{share}/delete"), &[])
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "already stopped");
    // A department share reaches its members.
    let dept = ann_web
        .post(
            &format!("{page_path}/shares"),
            &[
                ("with", &format!("department:{support}")),
                ("access", "read"),
            ],
        )
        .await;
    assert_eq!(dept.status, StatusCode::SEE_OTHER);
    assert_eq!(bob_api.get(&path).await.status, StatusCode::OK);
    assert!(ann_web.get(&page_path).await.html.contains("Support ("));
}

async fn an_admin_makes_an_object_and_adds_its_fields_on_its_pages(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let list = web.get("/admin/objects").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.html);
    assert!(list.html.contains("id=\"object-contacts\""));

    let bad = web
        .post("/admin/objects", &[("name", "Bad Name"), ("label", "Bad")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("id=\"err-name\""), "{}", bad.html);
    assert!(
        bad.html.contains("value=\"Bad Name\""),
        "what was typed stays"
    );
    let made = web
        .post(
            "/admin/objects",
            &[
                ("name", "projects"),
                ("label", "Project"),
                ("label_plural", "Projects"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    assert_eq!(made.location.as_deref(), Some("/admin/objects/projects"));

    let added = web
        .post(
            "/admin/objects/projects/fields",
            &[
                ("name", "stage"),
                ("label", "Stage"),
                ("type", "picklist"),
                ("values", "Idea\r\nRunning\r\n\r\nDone"),
                ("required", "1"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.html);
    let client = web
        .post(
            "/admin/objects/projects/fields",
            &[
                ("name", "client"),
                ("type", "reference"),
                ("target", "companies"),
                ("indexed", "1"),
            ],
        )
        .await;
    assert_eq!(client.status, StatusCode::SEE_OTHER, "{}", client.html);
    let object = admin.get("/api/v1/objects/projects").await;
    let fields = object.body["fields"].as_array().unwrap();
    let stage = fields.iter().find(|f| f["name"] == "stage").expect("stage");
    assert_eq!(stage["values"], json!(["Idea", "Running", "Done"]));
    assert_eq!(stage["required"], true);
    let client = fields
        .iter()
        .find(|f| f["name"] == "client")
        .expect("client");
    assert_eq!(client["target"], "companies");
    assert_eq!(client["indexed"], true);
    let page = web.get("/admin/objects/projects?done=1").await;
    assert!(page.html.contains("id=\"field-stage\""));
    assert!(page.html.contains("Idea, Running, Done"));

    // Every refusal beside its input; nothing added.
    let refused = web
        .post(
            "/admin/objects/projects/fields",
            &[("name", "stage"), ("type", "long_text"), ("indexed", "1")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.html
    );
    assert!(
        refused.html.contains("already has a field named"),
        "{}",
        refused.html
    );
    assert!(refused.html.contains("id=\"err-type\""), "{}", refused.html);
    let forged = web
        .post(
            "/admin/objects/projects/fields",
            &[("name", "mood"), ("type", "hologram")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(forged.html.contains("is not a field type"));
    let object = admin.get("/api/v1/objects/projects").await;
    assert_eq!(object.body["fields"].as_array().map(Vec::len), Some(2));

    // The new object is a list page at once; members may not change metadata.
    let records = web.get("/records/projects").await;
    assert_eq!(records.status, StatusCode::OK, "{}", records.html);
    srv.member("mia@example.com", ROOT, "member").await;
    let member = WebSession::sign_in(&srv, "mia@example.com", "password-123").await;
    assert_eq!(
        member.get("/admin/objects").await.status,
        StatusCode::FORBIDDEN
    );
    let forbidden = member
        .post(
            "/admin/objects",
            &[("name", "secrets"), ("label", "Secret")],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        web.get("/admin/objects/nothing").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn an_admin_changes_and_removes_a_field_on_its_page(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let made = admin
        .post(
            "/api/v1/objects",
            json!({"name": "projects", "label": "Project", "fields": [
                {"name": "title", "type": "text", "required": true},
                {"name": "stage", "type": "picklist", "values": ["Idea", "Running", "Done"]},
                {"name": "memo", "type": "text"}
            ]}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let running = admin
        .post(
            "/api/v1/records/projects",
            json!({"title": "Roof", "stage": "Running"}),
        )
        .await;
    assert_eq!(running.status, StatusCode::CREATED, "{}", running.body);
    let stage_now = || async {
        let object = admin.get("/api/v1/objects/projects").await;
        object.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "stage")
            .cloned()
    };
    let before = stage_now().await.expect("stage");

    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let object = web.get("/admin/objects/projects").await;
    assert!(
        object
            .html
            .contains("href=\"/admin/objects/projects/fields/stage\""),
        "each field links to its page: {}",
        object.html
    );
    let page = web.get("/admin/objects/projects/fields/stage").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains(">Idea\nRunning\nDone</textarea>"),
        "{}",
        page.html
    );
    assert!(
        !page.html.contains("name=\"name\""),
        "a field is not renamed: {}",
        page.html
    );

    // A value a record holds cannot go: the reason above the form, what was typed
    // kept, nothing changed.
    let form = |values: &'static str, label: &'static str| {
        vec![
            ("label", label),
            ("type", "picklist"),
            ("values", values),
            ("indexed", "1"),
        ]
    };
    let refused = web
        .post(
            "/admin/objects/projects/fields/stage",
            &form("Idea\r\nDone", "Phase"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.html);
    assert!(
        refused.html.contains("records are in the way"),
        "{}",
        refused.html
    );
    assert!(
        refused.html.contains(">Idea\r\nDone</textarea>"),
        "{}",
        refused.html
    );
    assert_eq!(
        input_value(&refused.html, "label").as_deref(),
        Some("Phase")
    );
    assert_eq!(stage_now().await.as_ref(), Some(&before), "nothing changed");
    let forged = web
        .post(
            "/admin/objects/projects/fields/stage",
            &[("label", "Phase"), ("type", "hologram")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(forged.html.contains("id=\"err-type\""), "{}", forged.html);
    assert_eq!(stage_now().await.as_ref(), Some(&before), "nothing changed");

    // Renamed, a value added, indexed: as the API sees it.
    let saved = web
        .post(
            "/admin/objects/projects/fields/stage",
            &form("Idea\r\nRunning\r\nPaused\r\n\r\nDone", "Phase"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(
        saved.location.as_deref(),
        Some("/admin/objects/projects?done=1")
    );
    let stage = stage_now().await.expect("stage");
    assert_eq!(stage["label"], "Phase");
    assert_eq!(
        stage["values"],
        json!(["Idea", "Running", "Paused", "Done"])
    );
    assert_eq!(stage["indexed"], true);
    assert_eq!(stage["required"], false);
    let paused = admin
        .post(
            "/api/v1/records/projects",
            json!({"title": "Shed", "stage": "Paused"}),
        )
        .await;
    assert_eq!(paused.status, StatusCode::CREATED, "{}", paused.body);

    // A field a record holds a value of stays; a free one goes.
    let kept = web
        .post("/admin/objects/projects/fields/stage/delete", &[])
        .await;
    assert_eq!(kept.status, StatusCode::CONFLICT, "{}", kept.html);
    assert!(kept.html.contains("hold a value of stage"), "{}", kept.html);
    assert!(stage_now().await.is_some());
    let gone = web
        .post("/admin/objects/projects/fields/memo/delete", &[])
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.html);
    let object = admin.get("/api/v1/objects/projects").await;
    let names: Vec<&str> = object.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["title", "stage"], "{}", object.body);
    assert_eq!(
        web.get("/admin/objects/projects/fields/memo").await.status,
        StatusCode::NOT_FOUND
    );

    // Members may neither see nor change a field.
    srv.member("mia@example.com", ROOT, "member").await;
    let member = WebSession::sign_in(&srv, "mia@example.com", "password-123").await;
    assert_eq!(
        member
            .get("/admin/objects/projects/fields/stage")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    for path in [
        "/admin/objects/projects/fields/stage",
        "/admin/objects/projects/fields/stage/delete",
    ] {
        let forbidden = member.post(path, &form("Idea", "Mine")).await;
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(stage_now().await.expect("stage")["label"], "Phase");
}

async fn a_user_picks_list_columns_and_saves_the_view_for_later(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    for (name, status) in [("Alpha", "won"), ("Beta", "new"), ("Gamma", "won")] {
        admin
            .create(
                "deals",
                json!({"name": name, "amount": 100, "status": status}),
            )
            .await;
    }
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let heads = |html: &str| html.matches("<th scope=\"col\" aria-sort").count();

    // The picker sends one `columns` per box ticked; the list shows those.
    let picked = web
        .get("/records/deals?filter%5Bstatus%5D=won&columns=name&columns=amount&columns=")
        .await;
    assert_eq!(picked.status, StatusCode::OK, "{}", picked.html);
    assert_eq!(heads(&picked.html), 2, "{}", picked.html);
    assert!(
        picked
            .html
            .contains("name=\"columns\" value=\"amount\" checked"),
        "the picker shows the columns chosen: {}",
        picked.html
    );
    assert!(
        picked.html.contains("name=\"columns\" value=\"status\">"),
        "and offers the others"
    );
    assert!(
        picked
            .html
            .contains("type=\"hidden\" name=\"filter[status]\" value=\"won\""),
        "the picker keeps the filter"
    );
    let query = input_value(&picked.html, "query").expect("the save-view form");
    assert_eq!(
        query.replace("&#38;", "&"),
        "filter%5Bstatus%5D=won&columns=name%2Camount"
    );

    // Saved, the view opens at once and is listed; the page cursor is not kept.
    let saved = web
        .post(
            "/records/deals/views",
            &[
                ("name", "Won deals"),
                (
                    "query",
                    "filter%5Bstatus%5D=won&columns=name%2Camount&cursor=abc",
                ),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let opened = saved.location.expect("the view's address");
    assert_eq!(
        opened,
        "/records/deals?filter%5Bstatus%5D=won&columns=name%2Camount"
    );
    let view = web.get(&opened).await;
    assert_eq!(heads(&view.html), 2);
    assert!(view.html.contains("Gamma") && !view.html.contains("Beta"));
    assert!(
        view.html.contains("aria-current=\"page\">Won deals</a>"),
        "{}",
        view.html
    );

    // Refusals beside the name, the list still shown: no name, a filter the list
    // refuses.
    let nameless = web
        .post("/records/deals/views", &[("name", " "), ("query", "q=a")])
        .await;
    assert_eq!(nameless.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        nameless.html.contains("id=\"err-view\""),
        "{}",
        nameless.html
    );
    assert!(nameless.html.contains("Alpha"), "the list is still there");
    let bad = web
        .post(
            "/records/deals/views",
            &[("name", "Odd"), ("query", "filter%5Bnope%5D=1")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("nope"), "{}", bad.html);
    assert_eq!(input_value(&bad.html, "name").as_deref(), Some("Odd"));

    // The API sees the same views; the same name replaces; others' views are private.
    let listed = admin.get("/api/v1/records/deals/views").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let views = listed.body.as_array().unwrap();
    assert_eq!(views.len(), 1, "{}", listed.body);
    assert_eq!(views[0]["name"], "Won deals");
    let id = views[0]["id"].as_str().unwrap().to_string();
    let replaced = admin
        .post(
            "/api/v1/records/deals/views",
            json!({"name": "Won deals", "query": "sort=-amount&filter[status]=won"}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["id"], id.as_str());
    assert_eq!(
        replaced.body["query"],
        "sort=-amount&filter%5Bstatus%5D=won"
    );
    let made = admin
        .post("/api/v1/records/deals/views", json!({"name": "Everything"}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let bad_sort = admin
        .post(
            "/api/v1/records/deals/views",
            json!({"name": "x", "query": "sort=nothing"}),
        )
        .await;
    assert_eq!(bad_sort.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad_sort.body["errors"][0]["field"], "query",
        "{}",
        bad_sort.body
    );
    assert_eq!(
        admin
            .post("/api/v1/records/nothing/views", json!({"name": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let (_, bob) = srv.member("bob@example.com", ROOT, "member").await;
    let his = bob.get("/api/v1/records/deals/views").await;
    assert_eq!(his.status, StatusCode::OK);
    assert_eq!(his.body, json!([]), "views are private");
    let bob_web = WebSession::sign_in(&srv, "bob@example.com", "password-123").await;
    let not_his = bob_web
        .post(&format!("/records/deals/views/{id}/delete"), &[])
        .await;
    assert_eq!(not_his.status, StatusCode::NOT_FOUND);

    // Removed from the list page.
    let removed = web
        .post(&format!("/records/deals/views/{id}/delete"), &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let left = admin.get("/api/v1/records/deals/views").await;
    let names: Vec<&str> = left
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(names, ["Everything"]);
    let gone = admin
        .delete(&format!("/api/v1/records/deals/views/{id}"))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

async fn a_solar_hijri_user_types_dates_in_their_calendar(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let saved = web
        .post(
            "/settings",
            &[
                ("locale", "en"),
                ("digits", "persian"),
                ("calendar", "hijri"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);

    // No Gregorian date picker: a text box, with the form it takes.
    let new = web.get("/records/deals/new").await;
    assert!(
        new.html
            .contains("id=\"in-close_date\" name=\"close_date\" type=\"text\""),
        "{}",
        new.html
    );
    assert!(new.html.contains("Solar Hijri date, as 1403/01/31."));

    // A day the calendar does not have is refused beside the field, as typed.
    let bad = web
        .post(
            "/records/deals",
            &[("name", "Nowruz deal"), ("close_date", "۱۴۰۴/۱۲/۳۰")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("id=\"err-close_date\""), "{}", bad.html);
    assert_eq!(
        input_value(&bad.html, "close_date").as_deref(),
        Some("۱۴۰۴/۱۲/۳۰")
    );

    // Typed in Persian digits, stored as the Gregorian day; shown back in the user's
    // calendar and digits.
    let made = web
        .post(
            "/records/deals",
            &[("name", "Nowruz deal"), ("close_date", "۱۴۰۳/۰۱/۰۱")],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let listed = admin.get("/api/v1/records/deals?q=Nowruz").await;
    let deal = &listed.body["items"][0];
    assert_eq!(deal["close_date"], "2024-03-20", "{}", listed.body);
    let id = deal["id"].as_str().unwrap();
    let edit = web.get(&format!("/records/deals/{id}/edit")).await;
    assert_eq!(
        input_value(&edit.html, "close_date").as_deref(),
        Some("۱۴۰۳/۰۱/۰۱"),
        "{}",
        edit.html
    );
    // A new day typed with Latin digits and dashes moves it.
    let version = deal["version"].as_i64().unwrap().to_string();
    let status = deal["status"].as_str().unwrap_or_default();
    let moved = web
        .post(
            &format!("/records/deals/{id}"),
            &[
                ("name", "Nowruz deal"),
                ("status", status),
                ("close_date", "1403-12-30"),
                ("_version", version.as_str()),
            ],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.html);
    let got = admin.get(&format!("/api/v1/records/deals/{id}")).await;
    assert_eq!(got.body["close_date"], "2025-03-20", "{}", got.body);

    // A date and time too: typed as `1403/01/01 14:30`, stored as the instant (UTC).
    let new = web.get("/records/activities/new").await;
    assert!(
        new.html
            .contains("id=\"in-starts_at\" name=\"starts_at\" type=\"text\""),
        "{}",
        new.html
    );
    assert!(
        new.html
            .contains("Solar Hijri date and time (UTC), as 1403/01/31 14:30.")
    );
    let bad = web
        .post(
            "/records/activities",
            &[
                ("kind", "meeting"),
                ("topic", "Nowruz call"),
                ("status", "new"),
                ("starts_at", "۱۴۰۳/۰۱/۰۱ ۲۵:۰۰"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("id=\"err-starts_at\""), "{}", bad.html);
    assert_eq!(
        input_value(&bad.html, "starts_at").as_deref(),
        Some("۱۴۰۳/۰۱/۰۱ ۲۵:۰۰"),
        "what was typed is kept"
    );
    let made = web
        .post(
            "/records/activities",
            &[
                ("kind", "meeting"),
                ("topic", "Nowruz call"),
                ("status", "new"),
                ("starts_at", "۱۴۰۳/۰۱/۰۱ ۱۴:۳۰"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let listed = admin.get("/api/v1/records/activities?q=Nowruz").await;
    let activity = &listed.body["items"][0];
    assert_eq!(
        activity["starts_at"], "2024-03-20T14:30:00Z",
        "{}",
        listed.body
    );
    let id = activity["id"].as_str().unwrap();
    let edit = web.get(&format!("/records/activities/{id}/edit")).await;
    assert_eq!(
        input_value(&edit.html, "starts_at").as_deref(),
        Some("۱۴۰۳/۰۱/۰۱ ۱۴:۳۰"),
        "{}",
        edit.html
    );
}

async fn an_admin_builds_a_form_on_the_form_builder_page(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    admin
        .install_plugin(plugin_package("plugins/forms"), &sales)
        .await;
    srv.member("sam@example.com", &sales, "member").await;
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let builder = "/apps/forms/views/forms";
    assert!(
        web.get("/")
            .await
            .html
            .contains(&format!("href=\"{builder}\">Form builder</a>")),
        "the builder is in the menu"
    );
    let empty = web.get(builder).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.html);
    assert!(empty.html.contains("No forms yet."));
    assert!(empty.html.contains(&format!("href=\"{builder}?new\"")));

    // A first try: a select without choices, a bad limit, no title and a name
    // that is not one. Every reason comes back beside its input, as typed.
    let new = web.get(&format!("{builder}?new")).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.html);
    assert!(
        new.html.contains("name=\"q0.name\""),
        "blank questions to fill"
    );
    assert_eq!(
        input_value(&new.html, "dedupe_by").as_deref(),
        Some("email")
    );
    let mut answers = vec![
        ("name", "Talk to Sales!"),
        ("title", ""),
        ("kind", "form"),
        ("object", "leads"),
        ("dedupe_by", "email"),
        ("q0.name", "last_name"),
        ("q0.label", "Your name"),
        ("q0.type", "text"),
        ("q0.required", "on"),
        ("q1.name", "email"),
        ("q1.type", "email"),
        ("q2.name", "interest"),
        ("q2.type", "select"),
        ("q2.max_length", "lots"),
        ("q3.name", ""),
    ];
    let refused = web.post(&format!("{builder}?new"), &answers).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.html
    );
    for reason in [
        "1 to 64 lower-case letters, digits and -",
        "must be 1 to 200 characters",
        "a select needs options",
        "a whole number from 1 to 100000",
    ] {
        assert!(refused.html.contains(reason), "{reason}: {}", refused.html);
    }
    assert!(refused.html.contains("aria-invalid=\"true\""));
    assert_eq!(
        input_value(&refused.html, "name").as_deref(),
        Some("Talk to Sales!"),
        "what was typed is kept"
    );
    assert_eq!(
        input_value(&refused.html, "q2.max_length").as_deref(),
        Some("lots")
    );
    let listed = admin.get("/api/v1/x/forms/forms").await;
    assert_eq!(listed.body, json!([]), "nothing was saved");

    // Fixed, it is saved and the browser goes back to the list.
    for (name, value) in answers.iter_mut() {
        match *name {
            "name" => *value = "talk-to-sales",
            "title" => *value = "Talk to <b>sales</b>",
            "q2.max_length" => *value = "",
            _ => {}
        }
    }
    answers.push(("q2.options", "demo, pricing"));
    answers.push(("hidden", "source=Web"));
    let saved = web.post(&format!("{builder}?new"), &answers).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(
        saved.location.as_deref(),
        Some("/apps/forms/views/forms?saved=talk-to-sales")
    );
    let stored = admin.get("/api/v1/x/forms/forms/talk-to-sales").await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    assert_eq!(stored.body["title"], "Talk to <b>sales</b>");
    assert_eq!(stored.body["department"], sales.as_str());
    assert_eq!(stored.body["hidden"], json!({"source": "Web"}));
    assert_eq!(stored.body["fields"][0]["required"], true);
    assert_eq!(
        stored.body["fields"][2]["options"],
        json!(["demo", "pricing"])
    );
    assert_eq!(stored.body["fields"].as_array().unwrap().len(), 3);
    let list = web.get(&saved.location.unwrap()).await;
    assert!(list.html.contains("Saved the form talk-to-sales."));
    assert!(
        list.html
            .contains(&format!("href=\"{builder}?edit=talk-to-sales\""))
    );
    assert!(
        list.html.contains("Talk to &#60;b&#62;sales&#60;/b&#62;"),
        "a plugin's text is escaped: {}",
        list.html
    );
    // The public page asks what the builder defined.
    let public = srv.anonymous().get("/public/forms/f/talk-to-sales").await;
    assert_eq!(public.status, StatusCode::OK);
    assert!(
        public.text.contains("<option>pricing</option>"),
        "{}",
        public.text
    );

    // Its editor comes filled in; a question's field emptied drops it.
    let edit_path = format!("{builder}?edit=talk-to-sales");
    let editor = web.get(&edit_path).await;
    assert_eq!(editor.status, StatusCode::OK, "{}", editor.html);
    assert_eq!(
        input_value(&editor.html, "q1.name").as_deref(),
        Some("email")
    );
    assert_eq!(
        input_value(&editor.html, "q2.options").as_deref(),
        Some("demo, pricing")
    );
    assert!(
        !editor.html.contains("name=\"name\""),
        "a form's name is fixed: shown, not sent"
    );
    let changed = web
        .post(
            &edit_path,
            &[
                ("title", "Talk to sales"),
                ("kind", "form"),
                ("object", "leads"),
                ("dedupe_by", "email"),
                ("q0.name", "last_name"),
                ("q0.required", "on"),
                ("q1.name", "email"),
                ("q1.type", "email"),
                ("q2.name", ""),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.html);
    let stored = admin.get("/api/v1/x/forms/forms/talk-to-sales").await;
    assert_eq!(stored.body["fields"].as_array().unwrap().len(), 2);
    assert_eq!(stored.body["hidden"], json!({}));

    // A member may look but not define; nothing changes.
    let sam = WebSession::sign_in(&srv, "sam@example.com", "password-123").await;
    assert_eq!(sam.get(builder).await.status, StatusCode::OK);
    let forbidden = sam
        .post(&edit_path, &[("title", "Mine now"), ("remove", "on")])
        .await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.html
    );
    assert!(
        forbidden
            .html
            .contains("only admins of the department define forms")
    );
    // Without the CSRF token nothing is sent to the plugin.
    let forged = web
        .post_raw(&edit_path, &[("title", "Forged"), ("remove", "on")], false)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        admin.get("/api/v1/x/forms/forms/talk-to-sales").await.body["title"],
        "Talk to sales"
    );

    // Removed from its editor.
    let removed = web.post(&edit_path, &[("remove", "on")]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.html);
    assert_eq!(
        admin
            .get("/api/v1/x/forms/forms/talk-to-sales")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(web.get(&edit_path).await.status, StatusCode::NOT_FOUND);
}

async fn a_document_is_shared_from_its_page_then_trashed_put_back_and_purged(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    srv.member("sam@example.com", &sales, "member").await;
    let (sue_id, _) = srv.member("sue@example.com", &support, "member").await;
    let sam = WebSession::sign_in(&srv, "sam@example.com", "password-123").await;
    let sue = WebSession::sign_in(&srv, "sue@example.com", "password-123").await;
    let folder_page = sam
        .post("/documents/folders", &[("name", "Offers"), ("parent", "")])
        .await
        .location
        .unwrap();
    let folder = folder_page.split("folder=").nth(1).unwrap().to_string();
    let uploaded = sam
        .multipart(
            &format!("/documents/upload?folder={folder}&_csrf={}", sam.csrf),
            &[("title", "Acme offer")],
            "file",
            b"the offer",
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.html);
    let doc_page = uploaded.location.unwrap();
    let id = doc_page.rsplit('/').next().unwrap().to_string();
    assert_eq!(sue.get(&doc_page).await.status, StatusCode::NOT_FOUND);

    // Its owner shares it with Sue from its page.
    let page = sam.get(&doc_page).await;
    assert!(page.html.contains("id=\"share-form\""), "{}", page.html);
    assert!(page.html.contains(&format!("value=\"user:{sue_id}\"")));
    assert!(page.html.contains("data-search=\"/sharing/choices\""));
    // The select's search box finds people by name or email and departments by name.
    let found = sam.get("/sharing/choices?q=SUE%40").await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(
        found.html.contains(&format!("value=\"user:{sue_id}\"")),
        "{}",
        found.html
    );
    assert!(!found.html.contains("sam@example.com"), "{}", found.html);
    let departments = sam.get("/sharing/choices?q=supp").await;
    assert!(
        departments
            .html
            .contains(&format!("value=\"department:{support}\"")),
        "{}",
        departments.html
    );
    assert!(!departments.html.contains("user:"), "{}", departments.html);
    let shared = sam
        .post(
            &format!("/documents/{id}/shares"),
            &[("with", &format!("user:{sue_id}")), ("access", "read")],
        )
        .await;
    assert_eq!(shared.status, StatusCode::SEE_OTHER, "{}", shared.html);
    assert!(sam.get(&doc_page).await.html.contains("sue@example.com"));
    let as_sue = sue.get(&doc_page).await;
    assert_eq!(as_sue.status, StatusCode::OK, "{}", as_sue.html);
    assert!(
        !as_sue.html.contains("id=\"share-form\"") && !as_sue.html.contains("trash-document"),
        "a reader neither shares nor deletes"
    );
    // Sue may neither share it on nor trash it; nothing changes.
    let refused = sue
        .post(
            &format!("/documents/{id}/shares"),
            &[("with", &format!("department:{support}"))],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    assert_eq!(
        sue.post(&format!("/documents/{id}/trash"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let shares = admin.get(&format!("/api/v1/documents/{id}/shares")).await;
    assert_eq!(shares.body.as_array().unwrap().len(), 1, "{}", shares.body);
    // A share with nobody is refused on the page.
    let nobody = sam
        .post(&format!("/documents/{id}/shares"), &[("with", "")])
        .await;
    assert_eq!(
        nobody.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        nobody.html
    );
    assert!(nobody.html.contains("id=\"doc-error\""));

    let share = shares.body[0]["id"].as_str().unwrap();
    let stopped = sam
        .post(&format!("/documents/{id}/shares/{share}/delete"), &[])
        .await;
    assert_eq!(stopped.status, StatusCode::SEE_OTHER, "{}", stopped.html);
    assert_eq!(sue.get(&doc_page).await.status, StatusCode::NOT_FOUND);

    // To the trash, and back.
    let trashed = sam.post(&format!("/documents/{id}/trash"), &[]).await;
    assert_eq!(trashed.status, StatusCode::SEE_OTHER, "{}", trashed.html);
    assert_eq!(trashed.location.as_deref(), Some("/documents?trash=1"));
    assert_eq!(sam.get(&doc_page).await.status, StatusCode::NOT_FOUND);
    assert!(!sam.get(&folder_page).await.html.contains("Acme offer"));
    let trash = sam.get("/documents?trash=1").await;
    assert!(trash.html.contains("Acme offer"), "{}", trash.html);
    assert!(trash.html.contains(&format!("id=\"untrash-{id}\"")));
    assert!(
        !trash.html.contains(&format!("id=\"purge-{id}\"")),
        "only an admin of its department deletes for good"
    );
    let back = sam.post(&format!("/documents/{id}/untrash"), &[]).await;
    assert_eq!(back.location.as_deref(), Some(doc_page.as_str()));
    assert!(sam.get(&folder_page).await.html.contains("Acme offer"));
    assert!(
        !sam.get("/documents?trash=1")
            .await
            .html
            .contains("Acme offer")
    );

    // Deleted for good by an admin; a member is refused.
    sam.post(&format!("/documents/{id}/trash"), &[]).await;
    assert_eq!(
        sam.post(&format!("/documents/{id}/purge"), &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let web = WebSession::sign_in(&srv, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(
        web.get("/documents?trash=1")
            .await
            .html
            .contains(&format!("id=\"purge-{id}\""))
    );
    let purged = web.post(&format!("/documents/{id}/purge"), &[]).await;
    assert_eq!(purged.status, StatusCode::SEE_OTHER, "{}", purged.html);
    assert_eq!(
        admin.get(&format!("/api/v1/documents/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        !web.get("/documents?trash=1")
            .await
            .html
            .contains("Acme offer")
    );
}
