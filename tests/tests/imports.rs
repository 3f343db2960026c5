//! CSV imports against a real server on both backends: upload, the suggested mapping,
//! a dry run that writes nothing and names every bad row, the real run, a second run
//! of the same file that duplicates nothing, a changed file that updates; bad files
//! and settings refused clearly; rights honoured; a run cut off by a crash resumes.

use std::time::Duration;

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Client, Options, Server, eventually, json, on_both_backends};
use serde_json::Value;

on_both_backends!(
    a_file_is_checked_imported_and_a_second_run_duplicates_nothing,
    bad_files_and_settings_are_refused_clearly,
    an_import_cut_off_by_a_crash_resumes_without_duplicates,
    a_workbook_imports_and_a_list_exports_as_a_workbook,
    a_mailing_list_exports_a_segments_emails_and_phones_once,
    a_value_a_unique_field_already_holds_fails_only_its_row,
    a_key_repeated_in_later_chunks_updates_the_record_the_first_made,
);

const ROOT: &str = "00000000-0000-0000-0000-000000000001";

async fn upload(client: &Client, object: &str, csv: impl Into<Vec<u8>>) -> crm_tests::Response {
    client
        .raw(
            Method::POST,
            &format!("/api/v1/imports?object={object}&name=people.csv"),
            "text/csv",
            csv.into(),
        )
        .await
}

/// Runs an import and waits for its run to end; answers the import.
async fn run(client: &Client, id: &str, settings: Value) -> Value {
    let started = client
        .post(&format!("/api/v1/imports/{id}/run"), settings)
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    finished(client, id).await
}

async fn finished(client: &Client, id: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        "the import's run to end",
        || async {
            let got = client.get(&format!("/api/v1/imports/{id}")).await;
            let status = got.body["status"].as_str().unwrap_or_default().to_string();
            (!matches!(status.as_str(), "running" | "checking")).then_some(got.body)
        },
    )
    .await
}

/// The refused rows of an import (first page): row number and reason.
async fn row_errors(client: &Client, id: &str) -> Vec<(i64, String)> {
    let errors = client.get(&format!("/api/v1/imports/{id}/errors")).await;
    assert_eq!(errors.status, StatusCode::OK, "{}", errors.body);
    errors.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().unwrap(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn counts(import: &Value) -> [i64; 5] {
    ["rows_done", "created", "updated", "unchanged", "failed"].map(|k| import[k].as_i64().unwrap())
}

async fn contacts_named(client: &Client, q: &str) -> Vec<Value> {
    let found = client
        .get(&format!("/api/v1/records/contacts?q={q}&limit=200"))
        .await;
    found.body["items"].as_array().cloned().unwrap_or_default()
}

async fn a_file_is_checked_imported_and_a_second_run_duplicates_nothing(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    // A BOM as spreadsheets write it, headers by label and by name, a column with no
    // field, quoted cells, and bad rows of several kinds.
    let csv = "\u{feff}first_name,Last Name,Email,Phone,Shoe size\r\n\
               Leyla,Karimi,leyla@acme.example,+98 21 1234,38\r\n\
               Omid,\"Rahimi, Jr.\",omid@acme.example,,42\r\n\
               Bad,Email,not-an-email,,40\r\n\
               NoLast,,nolast@acme.example,,41\r\n\
               Short,Row\r\n\
               Leyla,Karimi-Again,LEYLA@acme.example,+98 21 5555,38\r\n\
               Sara,\"=HYPERLINK(\"\"x\"\")\",sara@acme.example,,37\r\n";
    let up = upload(&admin, "contacts", csv).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let id = up.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        up.body["columns"],
        json!(["first_name", "Last Name", "Email", "Phone", "Shoe size"])
    );
    assert_eq!(up.body["rows_total"], 7);
    assert_eq!(up.body["status"], "uploaded");
    assert_eq!(
        up.body["settings"]["mapping"],
        json!({"Email": "email", "Last Name": "last_name", "Phone": "phone", "first_name": "first_name"}),
        "columns named like a field map to it; the shoe size maps to nothing"
    );
    assert_eq!(up.body["settings"]["match_on"], json!(["email"]));

    // The dry run counts and names every bad row, and writes nothing.
    let checked = run(&admin, &id, json!({"dry_run": true})).await;
    assert_eq!(checked["status"], "checked", "{checked}");
    assert_eq!(checked["dry_run"], true);
    // 3 new, the second Leyla a duplicate of the first (an update), 3 bad rows.
    assert_eq!(counts(&checked), [7, 3, 1, 0, 3], "{checked}");
    let rows = row_errors(&admin, &id).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0].0, 4);
    assert!(
        rows[0].1.starts_with("email: must be an email address"),
        "{rows:?}"
    );
    assert_eq!(rows[1].0, 5);
    assert!(rows[1].1.starts_with("last_name:"), "{rows:?}");
    assert_eq!(
        rows[2],
        (6, "the row has 2 cells; the header has 5".to_string())
    );
    assert!(
        contacts_named(&admin, "acme.example").await.is_empty(),
        "a dry run writes nothing"
    );

    // The real run: the same rows refused, the rest written (the repeat updates).
    let done = run(&admin, &id, json!({})).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(counts(&done), [7, 3, 1, 0, 3], "{done}");
    let made = contacts_named(&admin, "acme.example").await;
    assert_eq!(made.len(), 3, "{made:?}");
    let leyla = made.iter().find(|c| c["first_name"] == "Leyla").unwrap();
    assert_eq!(
        leyla["last_name"], "Karimi-Again",
        "the later row updated the first"
    );
    assert_eq!(leyla["phone"], "+98 21 5555");
    let omid = made.iter().find(|c| c["first_name"] == "Omid").unwrap();
    assert_eq!(omid["last_name"], "Rahimi, Jr.");
    // Imported through the one write path: audited as the importing user.
    let history = admin
        .get(&format!(
            "/api/v1/records/contacts/{}/history",
            omid["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(history.status, StatusCode::OK);
    assert_eq!(history.body[0]["action"], "created", "{}", history.body);

    // The same file again: nothing new. Omid and Sara are unchanged; the file's own
    // repeat of Leyla writes her twice again (first row, then the later one).
    let again = run(&admin, &id, json!({})).await;
    assert_eq!(counts(&again), [7, 0, 2, 2, 3], "{again}");
    assert_eq!(contacts_named(&admin, "acme.example").await.len(), 3);

    // A changed file updates only what differs; `skip` leaves duplicates alone.
    let changed = "Email,Phone,Last Name\nomid@acme.example,+98 21 7777,\"Rahimi, Jr.\"\nsara@acme.example,+1 555 0100,Stone\n";
    let second = upload(&admin, "contacts", changed).await;
    let second_id = second.body["id"].as_str().unwrap().to_string();
    let skipped = run(&admin, &second_id, json!({"on_duplicate": "skip"})).await;
    assert_eq!(counts(&skipped), [2, 0, 0, 2, 0], "{skipped}");
    let updated = run(&admin, &second_id, json!({"on_duplicate": "update"})).await;
    assert_eq!(counts(&updated), [2, 0, 2, 0, 0], "{updated}");
    let sara = contacts_named(&admin, "sara").await;
    assert_eq!(sara[0]["last_name"], "Stone");
    let omid = contacts_named(&admin, "omid").await;
    assert_eq!(omid[0]["phone"], "+98 21 7777");
    assert_eq!(omid[0]["version"], 2, "one update, not one per column");

    let mine = admin.get("/api/v1/imports?limit=1").await;
    assert_eq!(mine.body["items"][0]["id"], second_id.as_str());
    assert_eq!(mine.body["next_cursor"], second_id.as_str());
    let older = admin
        .get(&format!("/api/v1/imports?limit=1&cursor={second_id}"))
        .await;
    assert_eq!(older.body["items"][0]["id"], id.as_str());
}

async fn bad_files_and_settings_are_refused_clearly(backend: Backend) {
    let srv = Server::start_with(
        backend,
        Options::default().env("CRM_MAX_UPLOAD_BYTES", "4096"),
    )
    .await;
    let admin = srv.admin().await;

    // Latin-1 (a spreadsheet's "CSV" in another encoding): the line is named.
    let latin1: Vec<u8> =
        b"last_name,email\nKarimi,k@acme.example\nJos\xe9,j@acme.example\n".to_vec();
    let bad = upload(&admin, "contacts", latin1).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let detail = bad.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("not UTF-8") && detail.contains("line 3"),
        "{detail}"
    );
    let empty = upload(&admin, "contacts", "").await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.body["detail"].as_str().unwrap().contains("empty"));
    let twice = upload(&admin, "contacts", "email,email\na@b.example,c@d.example\n").await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        twice.body["detail"]
            .as_str()
            .unwrap()
            .contains("two columns are named 'email'")
    );
    let large = upload(&admin, "contacts", "last_name\n".repeat(1000)).await;
    assert_eq!(
        large.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        large.body
    );
    let unknown = upload(&admin, "starships", "name\nx\n").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let no_object = admin
        .raw(
            Method::POST,
            "/api/v1/imports",
            "text/csv",
            "last_name\nx\n",
        )
        .await;
    assert_eq!(no_object.status, StatusCode::BAD_REQUEST);

    // Settings that do not fit the file or the object: every problem named at once.
    let up = upload(
        &admin,
        "contacts",
        "Surname,Mail,Size\nKarimi,k@acme.example,3\n",
    )
    .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let id = up.body["id"].as_str().unwrap().to_string();
    let refused = admin
        .post(
            &format!("/api/v1/imports/{id}/run"),
            json!({"mapping": {"Mail": "email", "Size": "shoe_size", "Missing": "phone"}, "match_on": ["mobile"]}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let detail = refused.body["detail"].as_str().unwrap();
    for part in [
        "the file has no column 'Missing'",
        "contacts has no field 'shoe_size'",
        "'last_name' is required and no column is mapped to it",
        "match_on names 'mobile', which no column is mapped to",
    ] {
        assert!(detail.contains(part), "{part} in {detail}");
    }
    let typo = admin
        .post(
            &format!("/api/v1/imports/{id}/run"),
            json!({"dryrun": true}),
        )
        .await;
    assert_eq!(
        typo.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown keys are refused"
    );
    assert_eq!(
        admin.get(&format!("/api/v1/imports/{id}")).await.body["status"],
        "uploaded",
        "a refused run changes nothing"
    );

    // Rights: no create right, no upload; another user's import is not there.
    let (_, reader) = srv.member("rita@example.com", ROOT, "read_only").await;
    let denied = upload(&reader, "contacts", "last_name\nx\n").await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    assert_eq!(
        reader.get(&format!("/api/v1/imports/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        reader
            .post(&format!("/api/v1/imports/{id}/run"), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // A record the importer may not read is as if absent: matched neither in a dry
    // run's counts nor by an update (nothing about it leaks).
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    admin
        .create(
            "contacts",
            json!({"last_name": "Hidden", "email": "hidden@acme.example", "department": support}),
        )
        .await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let up = upload(
        &sam,
        "contacts",
        "last_name,email\nKarimi,hidden@acme.example\n",
    )
    .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let sam_id = up.body["id"].as_str().unwrap().to_string();
    let checked = run(&sam, &sam_id, json!({"dry_run": true})).await;
    assert_eq!(counts(&checked), [1, 1, 0, 0, 0], "{checked}");
    // A field the role may only read cannot be mapped.
    let role = admin
        .post("/api/v1/roles", json!({
            "name": "operator", "label": "Operator",
            "permissions": {"contacts": {"read": "department", "create": "department", "update": "department"}},
            "fields": {"contacts": {"phone": "read"}}
        }))
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let (_, operator) = srv.member("olga@example.com", ROOT, "operator").await;
    let up = upload(&operator, "contacts", "last_name,phone\nKarimi,+98 21 1\n").await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(
        up.body["settings"]["mapping"],
        json!({"last_name": "last_name"}),
        "the suggestion leaves out what the user may not write"
    );
    let op_id = up.body["id"].as_str().unwrap();
    let refused = operator
        .post(
            &format!("/api/v1/imports/{op_id}/run"),
            json!({"mapping": {"last_name": "last_name", "phone": "phone"}}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("you may not write the field 'phone'")
    );
    let deleted = operator.delete(&format!("/api/v1/imports/{op_id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        operator
            .get(&format!("/api/v1/imports/{op_id}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn an_import_cut_off_by_a_crash_resumes_without_duplicates(backend: Backend) {
    let mut srv = Server::start(backend).await;
    let admin = srv.admin().await;
    const ROWS: usize = 30_000;
    let mut csv = String::from("last_name,email\n");
    for i in 0..ROWS {
        csv.push_str(&format!("Crash{i},crash{i}@acme.example\n"));
    }
    let up = upload(&admin, "contacts", csv).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let id = up.body["id"].as_str().unwrap().to_string();
    let started = admin
        .post(&format!("/api/v1/imports/{id}/run"), json!({}))
        .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    eventually(
        Duration::from_secs(60),
        "the first rows imported",
        || async {
            let got = admin.get(&format!("/api/v1/imports/{id}")).await;
            (got.body["rows_done"].as_i64().unwrap_or(0) > 0).then_some(())
        },
    )
    .await;
    srv.kill().await;
    srv.restart().await;
    let done = finished(&admin, &id).await;
    assert_eq!(done["status"], "done", "{done}");
    let [rows, created, updated, unchanged, failed] = counts(&done);
    assert_eq!((updated, failed), (0, 0), "{done}");
    assert_eq!(rows, ROWS as i64, "{done}");
    assert_eq!(
        created + unchanged,
        ROWS as i64,
        "rows redone after the crash are unchanged: {done}"
    );
    let stored = admin
        .get("/api/v1/records/contacts/aggregate?filter[email][contains]=acme.example")
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    assert_eq!(
        stored.body["groups"][0]["count"], ROWS,
        "every row once, none twice: {}",
        stored.body
    );
}

/// A workbook's sheet as Python's zipfile reads it (another reader than ours, checking
/// every part's CRC): the worksheet's XML.
fn sheet_read_by_python(xlsx: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.xlsx");
    std::fs::write(&path, xlsx).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             assert z.testzip() is None, 'a part is damaged'\n\
             names = set(z.namelist())\n\
             assert {'[Content_Types].xml', '_rels/.rels', 'xl/workbook.xml', 'xl/_rels/workbook.xml.rels'} <= names, names\n\
             sys.stdout.write(z.read('xl/worksheets/sheet1.xml').decode())",
        )
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn a_workbook_imports_and_a_list_exports_as_a_workbook(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    // As Excel saves it (tests/fixtures/make_contacts_xlsx.py): deflated, shared and
    // rich strings, a date style, formulas with their values, a blank row.
    let workbook = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/contacts.xlsx"
    ))
    .unwrap();
    let uploaded = admin
        .raw(
            Method::POST,
            "/api/v1/imports?object=contacts",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            workbook,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    assert_eq!(uploaded.body["file_name"], "contacts.xlsx");
    assert_eq!(
        uploaded.body["columns"],
        json!(["first_name", "last_name", "email", "birthday", "score"])
    );
    assert_eq!(uploaded.body["rows_total"], 3, "the blank row is left out");
    let id = uploaded.body["id"].as_str().unwrap().to_string();
    let done = run(
        &admin,
        &id,
        json!({"mapping": {"first_name": "first_name", "last_name": "last_name", "email": "email"}}),
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    let refused = admin.get(&format!("/api/v1/imports/{id}/errors")).await;
    assert_eq!(counts(&done), [3, 3, 0, 0, 0], "{}", refused.body);
    let sara = contacts_named(&admin, "sara@example.com").await;
    assert_eq!(sara.len(), 1);
    assert_eq!(
        sara[0]["last_name"], "Ahmadi & Co",
        "rich text joined, phonetic left out"
    );
    let formula = contacts_named(&admin, "X %26").await;
    assert_eq!(formula[0]["last_name"], "X & \u{628}", "a formula's value");

    // Broken workbooks are refused with the reason; nothing is kept.
    let broken = admin
        .raw(
            Method::POST,
            "/api/v1/imports?object=contacts",
            "application/octet-stream",
            b"PK\x03\x04 this is not really a workbook".to_vec(),
        )
        .await;
    assert_eq!(
        broken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        broken.body
    );
    assert!(
        broken.text.contains("the workbook cannot be read"),
        "{}",
        broken.text
    );

    // Exported as a workbook: a list view's filter and sort, typed cells, a formula
    // kept as text.
    admin
        .create(
            "contacts",
            json!({"last_name": "=HYPERLINK(\"http://evil.example\")", "email": "evil@example.com"}),
        )
        .await;
    let exported = admin
        .get("/api/v1/records/contacts/export?format=xlsx&sort=last_name&filter[email][contains]=example.com")
        .await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.text);
    assert_eq!(
        exported.header("content-type"),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    assert_eq!(
        exported.header("content-disposition"),
        Some("attachment; filename=\"contacts.xlsx\"")
    );
    let sheet = sheet_read_by_python(&exported.bytes);
    assert!(
        sheet.contains(r#"<row r="1"><c r="A1" t="inlineStr"><is><t xml:space="preserve">id</t>"#),
        "{sheet}"
    );
    assert_eq!(
        sheet.matches("<row ").count(),
        3,
        "the header and two contacts: {sheet}"
    );
    assert!(
        sheet.contains("=HYPERLINK(&quot;http://evil.example&quot;)"),
        "{sheet}"
    );
    assert!(!sheet.contains("<f>"), "no formula: {sheet}");
    assert!(sheet.contains("Ahmadi &amp; Co"));
    assert!(
        sheet.find("=HYPERLINK").unwrap() < sheet.find("Ahmadi").unwrap(),
        "sorted by last name"
    );
    assert!(sheet.contains(r#"t="inlineStr"><is><t xml:space="preserve">sara@example.com"#));
    // Our own reader takes the export back (an export re-imports).
    let again = admin
        .raw(
            Method::POST,
            "/api/v1/imports?object=contacts",
            "application/octet-stream",
            exported.bytes.clone(),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body["rows_total"], 2);
    let bad = admin
        .get("/api/v1/records/contacts/export?format=pdf")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("format is csv or xlsx"), "{}", bad.text);
}

async fn a_mailing_list_exports_a_segments_emails_and_phones_once(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    for (first, last, email, phone, title) in [
        ("Ann", "Amini", "ann@example.com", "+98 21 5555 0001", "CEO"),
        ("Ann", "Again", "ANN@example.com", "", "CEO"),
        ("Bob", "Bakari", "", "+255 22 555 0002", "CEO"),
        ("Carl", "Nocontact", "", "", "CEO"),
        ("Dana", "Other", "dana@example.com", "", "CTO"),
    ] {
        let mut body = json!({"first_name": first, "last_name": last, "job_title": title});
        if !email.is_empty() {
            body["email"] = json!(email);
        }
        if !phone.is_empty() {
            body["phone"] = json!(phone);
        }
        admin.create("contacts", body).await;
    }
    let list = admin
        .get("/api/v1/records/contacts/mailing-list?filter[job_title]=CEO&sort=created_at")
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(
        list.header("content-disposition"),
        Some("attachment; filename=\"contacts-mailing-list.csv\"")
    );
    let lines: Vec<&str> = list.text.lines().collect();
    assert_eq!(lines[0], "id,first_name,last_name,email,phone,mobile");
    let rest: Vec<String> = lines[1..]
        .iter()
        .map(|l| l.split_once(',').unwrap().1.to_string())
        .collect();
    assert_eq!(
        rest,
        [
            "Ann,Amini,ann@example.com,+98 21 5555 0001,",
            "Bob,Bakari,,+255 22 555 0002,"
        ],
        "each email once (in any case), phone-only kept, no-contact and other segments left out"
    );
    let workbook = admin
        .get("/api/v1/records/contacts/mailing-list?filter[job_title]=CEO&format=xlsx")
        .await;
    assert_eq!(workbook.status, StatusCode::OK);
    assert_eq!(
        sheet_read_by_python(&workbook.bytes)
            .matches("<row ")
            .count(),
        3
    );

    // Chosen columns and a unique field on any export.
    let chosen = admin
        .get("/api/v1/records/contacts/export?columns=last_name,email&unique=email&sort=last_name")
        .await;
    assert_eq!(chosen.status, StatusCode::OK, "{}", chosen.text);
    assert_eq!(
        chosen.text,
        "last_name,email\r\nAgain,ANN@example.com\r\nBakari,\r\nNocontact,\r\nOther,dana@example.com\r\n",
        "the repeat of an email left out; records without one kept"
    );
    for (query, says) in [
        ("columns=last_name,secret", "cannot export 'secret'"),
        ("columns=last_name&unique=email", "unique names 'email'"),
    ] {
        let bad = admin
            .get(&format!("/api/v1/records/contacts/export?{query}"))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(bad.text.contains(says), "{query}: {}", bad.text);
    }
    let no_contact = admin.get("/api/v1/records/deals/mailing-list").await;
    assert_eq!(no_contact.status, StatusCode::BAD_REQUEST);
    assert!(
        no_contact.text.contains("no email or phone field"),
        "{}",
        no_contact.text
    );
    // Export right needed, as for any export.
    let (_, member) = srv.member("mo@example.com", ROOT, "member").await;
    assert_eq!(
        member
            .get("/api/v1/records/contacts/mailing-list")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

/// New records of a chunk are written together; a row whose value a unique field
/// already holds (in a stored record, or in an earlier row of the same chunk) fails
/// alone, with the reason, and the rows around it are created.
async fn a_value_a_unique_field_already_holds_fails_only_its_row(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let made = admin
        .post(
            "/api/v1/objects",
            json!({"name": "members", "fields": [
                {"name": "name", "type": "text", "required": true},
                {"name": "code", "type": "text", "unique": true}
            ]}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let stored = admin
        .post(
            "/api/v1/records/members",
            json!({"name": "Stored", "code": "M-2"}),
        )
        .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.body);
    let csv = "Name,Code\nAna,M-1\nBabak,M-2\nChidi,M-3\nDana,M-3\nEsi,M-5\n";
    let up = upload(&admin, "members", csv).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let id = up.body["id"].as_str().unwrap().to_string();
    // No duplicate matching: every row is a new record.
    let done = run(
        &admin,
        &id,
        json!({"mapping": {"Name": "name", "Code": "code"}, "match_on": []}),
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(counts(&done), [5, 3, 0, 0, 2], "{done}");
    let failed = row_errors(&admin, &id).await;
    assert_eq!(
        failed.iter().map(|(row, _)| *row).collect::<Vec<_>>(),
        [3, 5],
        "{failed:?}"
    );
    assert!(
        failed.iter().all(|(_, m)| m.contains("must be unique")),
        "{failed:?}"
    );
    let list = admin.get("/api/v1/records/members?sort=name").await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ana", "Chidi", "Esi", "Stored"]);
}

/// Rows an import checks and writes as one chunk (`CHUNK` in host/src/imports/run.rs).
const CHUNK: usize = 4_000;

/// Chunks are checked and written a few at a time; a row repeating a key of the chunk
/// before it must still meet the record that chunk made (an update, not a second
/// record).
async fn a_key_repeated_in_later_chunks_updates_the_record_the_first_made(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    // Rows of the second chunk of even number repeat the email of the row a chunk
    // before them; rows from the third chunk on divisible by 3 that of the row two
    // chunks before them (the first chunk's, while the second may still be under
    // way; for an even one, the second chunk repeats it too).
    let key = |i: usize| {
        if (CHUNK..2 * CHUNK).contains(&i) && i.is_multiple_of(2) {
            i - CHUNK
        } else if i >= 2 * CHUNK && i.is_multiple_of(3) {
            i - 2 * CHUNK
        } else {
            i
        }
    };
    let rows = 2 * CHUNK + CHUNK / 2;
    let mut csv = String::from("Last name,Email,Phone\n");
    for i in 0..rows {
        csv.push_str(&format!("P{i},p{}@acme.example,+98 21 {i:07}\n", key(i)));
    }
    let up = upload(&admin, "contacts", csv).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let id = up.body["id"].as_str().unwrap().to_string();
    let done = run(&admin, &id, json!({})).await;
    assert_eq!(done["status"], "done", "{done}");
    // Every odd row of the second chunk, and of the rest those not divisible by 3,
    // make a record; the others update one.
    let updates = CHUNK / 2 + (2 * CHUNK..rows).filter(|i| i.is_multiple_of(3)).count();
    let records = rows - updates;
    assert_eq!(
        counts(&done),
        [rows as i64, records as i64, updates as i64, 0, 0],
        "{done}"
    );
    let exported = admin
        .get("/api/v1/records/contacts/export?columns=email,phone&sort=email")
        .await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.text);
    let lines: Vec<&str> = exported.text.lines().skip(1).collect();
    assert_eq!(lines.len(), records, "one record per email");
    // The repeated emails hold the last row's phone.
    let (c, c2) = (CHUNK, 2 * CHUNK);
    for (email, row) in [
        (0, c),
        (2, c + 2),
        (c - 2, c2 - 2),
        (1, c2 + 1),
        (4, c2 + 4),
    ] {
        let line = format!("p{email}@acme.example,+98 21 {row:07}");
        assert!(lines.contains(&line.as_str()), "{line} missing");
    }
    assert!(
        lines.contains(&"p5@acme.example,+98 21 0000005"),
        "not repeated: unchanged"
    );
}
