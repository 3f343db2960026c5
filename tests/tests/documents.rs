//! The document library through the real server: folders, uploads streamed to the
//! local store, versions, ranges, access by department, audited downloads, and bad
//! input (names, empty and oversized files, uploads cut off, concurrent versions).

use std::time::Duration;

use crm_tests::reqwest::{Method, StatusCode};
use crm_tests::{Backend, Client, Options, Server, eventually, json, on_both_backends};
use tokio::io::AsyncWriteExt;

on_both_backends!(
    a_document_is_uploaded_versioned_and_downloaded_whole_or_in_ranges,
    documents_follow_the_folders_department_and_the_shared_library_is_for_all,
    bad_uploads_are_refused_and_leave_nothing_behind,
    check_outs_restores_the_trash_and_record_links,
    documents_live_in_s3_compatible_storage,
    plugins_read_documents_as_their_caller_where_they_are_enabled,
    a_quota_holds_when_uploads_race_for_its_last_bytes,
);

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n";

async fn folder(api: &Client, body: serde_json::Value) -> String {
    let res = api.post("/api/v1/folders", body).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.body["id"].as_str().unwrap().to_string()
}

async fn upload(api: &Client, path: &str, bytes: Vec<u8>) -> crm_tests::Response {
    api.send(
        api.request(Method::POST, path)
            // What the client claims is never what is stored.
            .header("content-type", "text/html")
            .body(bytes),
    )
    .await
}

async fn bytes_of(
    api: &Client,
    path: &str,
    range: Option<&str>,
) -> (StatusCode, Vec<u8>, Option<String>) {
    let mut rb = api.request(Method::GET, path);
    if let Some(r) = range {
        rb = rb.header("range", r);
    }
    let res = rb.send().await.expect("request reaches the server");
    let status = res.status();
    let content_range = res
        .headers()
        .get("content-range")
        .map(|v| v.to_str().unwrap().to_string());
    (status, res.bytes().await.unwrap().to_vec(), content_range)
}

fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files_under(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn a_document_is_uploaded_versioned_and_downloaded_whole_or_in_ranges(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let offers = folder(&sam, json!({"name": "Offers", "department": sales})).await;

    let created = upload(
        &sam,
        &format!("/api/v1/folders/{offers}/documents?name=offer.pdf&title=Offer%20for%20Acme&tags=acme,offer"),
        PDF.to_vec(),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let doc = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.body["content_type"], "application/pdf",
        "sniffed, not claimed"
    );
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.body["size"], PDF.len());
    assert_eq!(created.body["owner"], sam_id.as_str());
    assert_eq!(created.body["department"], sales.as_str());
    assert_eq!(created.body["tags"], json!(["acme", "offer"]));

    let (status, body, _) = bytes_of(&sam, &format!("/api/v1/documents/{doc}/content"), None).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, PDF));
    let (status, body, range) = bytes_of(
        &sam,
        &format!("/api/v1/documents/{doc}/content"),
        Some("bytes=0-3"),
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, b"%PDF");
    assert_eq!(
        range.as_deref(),
        Some(format!("bytes 0-3/{}", PDF.len()).as_str())
    );
    let (status, body, _) = bytes_of(
        &sam,
        &format!("/api/v1/documents/{doc}/content"),
        Some("bytes=-6"),
    )
    .await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &b"%%EOF\n"[..])
    );
    let (status, _, range) = bytes_of(
        &sam,
        &format!("/api/v1/documents/{doc}/content"),
        Some("bytes=999-"),
    )
    .await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        range.as_deref(),
        Some(format!("bytes */{}", PDF.len()).as_str())
    );

    // A new version becomes the current one; the old one stays downloadable.
    let second = upload(
        &sam,
        &format!("/api/v1/documents/{doc}/versions?name=offer-v2.txt&reason=new%20prices"),
        b"Offer, version two: 10% off".to_vec(),
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(second.body["version"], 2);
    assert_eq!(second.body["content_type"], "text/plain");
    assert_eq!(second.body["file_name"], "offer-v2.txt");
    let versions = sam.get(&format!("/api/v1/documents/{doc}/versions")).await;
    assert_eq!(versions.body[0]["version"], 2);
    assert_eq!(versions.body[0]["reason"], "new prices");
    assert_eq!(versions.body[0]["uploaded_by"], sam_id.as_str());
    assert_eq!(versions.body[1]["version"], 1);
    let (_, old, _) = bytes_of(
        &sam,
        &format!("/api/v1/documents/{doc}/versions/1/content"),
        None,
    )
    .await;
    assert_eq!(old, PDF);
    let (_, current, _) = bytes_of(&sam, &format!("/api/v1/documents/{doc}/content"), None).await;
    assert_eq!(current, b"Offer, version two: 10% off");

    // Two versions uploaded at once are both kept, one after the other.
    let (path_a, path_b) = (
        format!("/api/v1/documents/{doc}/versions?name=a.txt&reason=a"),
        format!("/api/v1/documents/{doc}/versions?name=b.txt&reason=b"),
    );
    let (a, b) = tokio::join!(
        upload(&sam, &path_a, b"A".to_vec()),
        upload(&sam, &path_b, b"B".to_vec()),
    );
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    let versions = sam.get(&format!("/api/v1/documents/{doc}/versions")).await;
    let numbers: Vec<i64> = versions
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 3, 2, 1]);

    // The same content is stored once, however many documents hold it.
    let blobs = srv.data_dir.path().join("documents/blobs");
    let before = files_under(&blobs);
    let copy = upload(
        &sam,
        &format!("/api/v1/folders/{offers}/documents?name=copy.pdf"),
        PDF.to_vec(),
    )
    .await;
    assert_eq!(copy.status, StatusCode::CREATED);
    assert_eq!(copy.body["sha256"], created.body["sha256"]);
    assert_eq!(files_under(&blobs), before);

    let found = sam.get("/api/v1/documents?q=acme").await;
    assert_eq!(
        found.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        found.body
    );
    let page = sam
        .get(&format!("/api/v1/documents?folder={offers}&limit=1"))
        .await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = sam
        .get(&format!(
            "/api/v1/documents?folder={offers}&limit=1&cursor={cursor}"
        ))
        .await;
    assert_ne!(next.body["items"][0]["id"], page.body["items"][0]["id"]);

    // A department quota: uploads past it are refused with 413, nothing stored.
    let quota = format!("/api/v1/departments/{sales}/document-quota");
    let used = admin.get(&quota).await.body["used_bytes"].as_i64().unwrap();
    assert!(used > 0);
    assert_eq!(
        sam.put(&quota, json!({"max_bytes": 1})).await.status,
        StatusCode::FORBIDDEN
    );
    let set = admin.put(&quota, json!({"max_bytes": used + 10})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let over = upload(
        &sam,
        &format!("/api/v1/folders/{offers}/documents?name=big.txt"),
        vec![b'x'; 11],
    )
    .await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", over.body);
    assert!(over.text.contains("quota"), "{}", over.text);
    let fits = upload(
        &sam,
        &format!("/api/v1/folders/{offers}/documents?name=ok.txt"),
        vec![b'y'; 10],
    )
    .await;
    assert_eq!(fits.status, StatusCode::CREATED, "{}", fits.body);
    let full = upload(
        &sam,
        &format!("/api/v1/documents/{doc}/versions?name=z.txt"),
        b"z".to_vec(),
    )
    .await;
    assert_eq!(full.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(admin.get(&quota).await.body["used_bytes"], used + 10);
    admin.put(&quota, json!({"max_bytes": null})).await;

    // Every download is in the document's history, for admins.
    let history = admin.get(&format!("/api/v1/documents/{doc}/history")).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let downloads: Vec<&serde_json::Value> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "downloaded")
        .collect();
    assert!(downloads.len() >= 5, "{}", history.body);
    assert!(downloads.iter().all(|e| e["actor"] == sam_id.as_str()));
    assert_eq!(
        sam.get(&format!("/api/v1/documents/{doc}/history"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

async fn documents_follow_the_folders_department_and_the_shared_library_is_for_all(
    backend: Backend,
) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    let (_, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (sue_id, sue) = srv.member("sue@example.com", &support, "member").await;
    let offers = folder(&sam, json!({"name": "Offers", "department": sales})).await;
    let doc = upload(
        &sam,
        &format!("/api/v1/folders/{offers}/documents?name=offer.pdf"),
        PDF.to_vec(),
    )
    .await;
    let doc = doc.body["id"].as_str().unwrap().to_string();

    // Support sees nothing of sales' library, and cannot add to it.
    assert_eq!(
        sue.get(&format!("/api/v1/documents/{doc}")).await.status,
        StatusCode::NOT_FOUND
    );
    let (status, _, _) = bytes_of(
        &sue,
        &format!("/api/v1/documents/{doc}/versions/1/content"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(sue.get("/api/v1/documents").await.body["items"], json!([]));
    let folders = sue.get("/api/v1/folders").await;
    assert!(!folders.text.contains(&offers), "{}", folders.text);
    let refused = upload(
        &sue,
        &format!("/api/v1/folders/{offers}/documents?name=x.txt"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let refused = upload(
        &sue,
        &format!("/api/v1/documents/{doc}/versions?name=x.txt"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(
        sue.post(
            "/api/v1/folders",
            json!({"name": "Mine", "department": sales})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let denials = admin.get("/api/v1/access/denials").await;
    assert!(denials.text.contains("documents"), "{}", denials.text);

    // Shared with Sue: she reads it (and lists it), but may not upload versions
    // until the share allows writing.
    assert_eq!(
        sue.post(
            &format!("/api/v1/documents/{doc}/shares"),
            json!({"user": "x", "access": "read"})
        )
        .await
        .status,
        StatusCode::NOT_FOUND,
        "she cannot share what she cannot read"
    );
    let share = sam
        .post(
            &format!("/api/v1/documents/{doc}/shares"),
            json!({"user": sue_id, "access": "read"}),
        )
        .await;
    assert_eq!(share.status, StatusCode::CREATED, "{}", share.body);
    assert_eq!(
        sue.get(&format!("/api/v1/documents/{doc}")).await.status,
        StatusCode::OK
    );
    let listed = sue.get("/api/v1/documents").await;
    assert_eq!(
        listed.body["items"][0]["id"],
        doc.as_str(),
        "{}",
        listed.body
    );
    let (status, body, _) = bytes_of(&sue, &format!("/api/v1/documents/{doc}/content"), None).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, PDF));
    let refused = upload(
        &sue,
        &format!("/api/v1/documents/{doc}/versions?name=x.txt"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let write = sam
        .post(
            &format!("/api/v1/documents/{doc}/shares"),
            json!({"user": sue_id, "access": "write"}),
        )
        .await;
    assert_eq!(write.status, StatusCode::CREATED, "{}", write.body);
    let allowed = upload(
        &sue,
        &format!("/api/v1/documents/{doc}/versions?name=x.txt"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::CREATED, "{}", allowed.body);
    let share_id = write.body["id"].as_str().unwrap();
    assert_eq!(
        sam.delete(&format!("/api/v1/documents/{doc}/shares/{share_id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sue.get(&format!("/api/v1/documents/{doc}")).await.status,
        StatusCode::NOT_FOUND
    );

    // A member edits only its own documents (the member role: update own).
    let (_, sid) = srv.member("sid@example.com", &sales, "member").await;
    assert_eq!(
        sid.get(&format!("/api/v1/documents/{doc}")).await.status,
        StatusCode::OK
    );
    let refused = upload(
        &sid,
        &format!("/api/v1/documents/{doc}/versions?name=x.txt"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The shared library: organisation admins make its folders, everyone reads it.
    assert_eq!(
        sam.post("/api/v1/folders", json!({"name": "Handbook"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let handbook = folder(&admin, json!({"name": "Handbook"})).await;
    let policy = upload(
        &sue,
        &format!("/api/v1/folders/{handbook}/documents?name=policy.txt"),
        b"Be kind.".to_vec(),
    )
    .await;
    assert_eq!(policy.status, StatusCode::CREATED, "{}", policy.body);
    assert_eq!(policy.body["department"], serde_json::Value::Null);
    let seen = sam
        .get(&format!(
            "/api/v1/documents/{}",
            policy.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(seen.status, StatusCode::OK);
    let sub = folder(&sam, json!({"name": "2026", "parent": offers})).await;
    let sub_folder = sam.get("/api/v1/folders").await;
    let sub_entry = sub_folder
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == sub.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        sub_entry["department"],
        sales.as_str(),
        "a sub-folder is in its parent's department"
    );
}

async fn bad_uploads_are_refused_and_leave_nothing_behind(backend: Backend) {
    let srv = Server::start_with(
        backend,
        Options::default().env("CRM_MAX_UPLOAD_BYTES", "100000"),
    )
    .await;
    let admin = srv.admin().await;
    let f = folder(&admin, json!({"name": "Inbox"})).await;
    for (name, says) in [
        ("..%2F..%2Fetc%2Fpasswd", "name"),
        ("bell%07.txt", "name"),
        ("..", "name"),
    ] {
        let res = upload(
            &admin,
            &format!("/api/v1/folders/{f}/documents?name={name}"),
            b"x".to_vec(),
        )
        .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            res.body
        );
        assert!(
            res.error_fields().contains(&says.to_string()),
            "{name}: {}",
            res.body
        );
    }
    let empty = upload(
        &admin,
        &format!("/api/v1/folders/{f}/documents?name=empty.txt"),
        Vec::new(),
    )
    .await;
    assert_eq!(
        empty.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        empty.body
    );
    assert!(empty.text.contains("empty"));
    let big = upload(
        &admin,
        &format!("/api/v1/folders/{f}/documents?name=big.bin"),
        vec![7u8; 100_001],
    )
    .await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", big.body);
    let missing = upload(
        &admin,
        "/api/v1/folders/nope/documents?name=a.txt",
        b"x".to_vec(),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let no_name = upload(
        &admin,
        &format!("/api/v1/folders/{f}/documents"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(no_name.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_name.error_fields(), ["name"]);

    // A multipart form: text fields, then the file part (its file name is the name).
    let form = |parts: &[(&str, Option<&str>, &[u8])]| {
        let mut body = Vec::new();
        for (name, file, bytes) in parts {
            body.extend_from_slice(b"--XBOUNDARYX\r\n");
            let disposition = match file {
                Some(f) => format!(
                    "content-disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\ncontent-type: application/octet-stream\r\n\r\n"
                ),
                None => format!("content-disposition: form-data; name=\"{name}\"\r\n\r\n"),
            };
            body.extend_from_slice(disposition.as_bytes());
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XBOUNDARYX--\r\n");
        body
    };
    let multipart = |body: Vec<u8>| {
        admin.send(
            admin
                .request(Method::POST, &format!("/api/v1/folders/{f}/documents"))
                .header("content-type", "multipart/form-data; boundary=XBOUNDARYX")
                .body(body),
        )
    };
    let sent = multipart(form(&[
        ("title", None, b"Price list"),
        ("tags", None, b"prices,2026"),
        ("file", Some("prices.pdf"), PDF),
    ]))
    .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.body["file_name"], "prices.pdf");
    assert_eq!(sent.body["title"], "Price list");
    assert_eq!(sent.body["tags"], json!(["prices", "2026"]));
    assert_eq!(sent.body["size"], PDF.len());
    let no_file = multipart(form(&[("title", None, b"Nothing")])).await;
    assert_eq!(no_file.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_file.error_fields(), ["file"]);
    let odd = multipart(form(&[
        ("colour", None, b"red"),
        ("file", Some("a.txt"), b"a"),
    ]))
    .await;
    assert_eq!(odd.error_fields(), ["colour"]);
    let id = sent.body["id"].as_str().unwrap();
    admin.delete(&format!("/api/v1/documents/{id}")).await;
    admin
        .delete(&format!("/api/v1/documents/{id}?purge=true"))
        .await;

    // An upload cut off half-way: the client promises 50,000 bytes, sends 1,000 and
    // goes away.
    let addr = srv.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/folders/{f}/documents?name=cut.bin HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-length: 50000\r\n\r\n",
        admin.token.as_deref().unwrap()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&[1u8; 1000]).await.unwrap();
    socket.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(socket);

    let store = srv.data_dir.path().join("documents");
    eventually(
        Duration::from_secs(5),
        "the cut-off upload's temporary data is gone",
        || async { (files_under(&store.join("tmp")) == 0).then_some(()) },
    )
    .await;
    assert_eq!(files_under(&store.join("blobs")), 0, "no content was kept");
    assert_eq!(
        admin.get("/api/v1/documents").await.body["items"],
        json!([]),
        "no document half-made"
    );
}

async fn check_outs_restores_the_trash_and_record_links(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (_, mary) = srv.member("mary@example.com", &sales, "manager").await;
    let (_, sue) = srv.member("sue@example.com", &support, "member").await;
    let offers = folder(&sam, json!({"name": "Offers", "department": sales})).await;
    let doc = upload(
        &sam,
        &format!("/api/v1/folders/{offers}/documents?name=offer.pdf"),
        PDF.to_vec(),
    )
    .await;
    let doc = doc.body["id"].as_str().unwrap().to_string();

    // Sam checks it out: the manager (who may edit it) must wait.
    let locked = sam
        .post(
            &format!("/api/v1/documents/{doc}/lock?minutes=30"),
            json!({}),
        )
        .await;
    assert_eq!(locked.status, StatusCode::OK, "{}", locked.body);
    assert_eq!(locked.body["locked_by"], sam_id.as_str());
    let blocked = upload(
        &mary,
        &format!("/api/v1/documents/{doc}/versions?name=m.txt"),
        b"mary".to_vec(),
    )
    .await;
    assert_eq!(blocked.status, StatusCode::CONFLICT, "{}", blocked.body);
    assert!(blocked.text.contains("checked out by"), "{}", blocked.text);
    assert_eq!(
        mary.post(&format!("/api/v1/documents/{doc}/lock"), json!({}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let second = upload(
        &sam,
        &format!("/api/v1/documents/{doc}/versions?name=v2.txt&reason=edit"),
        b"two".to_vec(),
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED, "the holder uploads");
    assert_eq!(
        sam.delete(&format!("/api/v1/documents/{doc}/lock"))
            .await
            .status,
        StatusCode::OK
    );
    let third = upload(
        &mary,
        &format!("/api/v1/documents/{doc}/versions?name=v3.txt"),
        b"three".to_vec(),
    )
    .await;
    assert_eq!(
        third.status,
        StatusCode::CREATED,
        "released: {}",
        third.body
    );

    // Restoring version 1 makes a new current version holding its content.
    let restored = sam
        .post(
            &format!(
                "/api/v1/documents/{doc}/versions/1/restore?reason=back%20to%20the%20original"
            ),
            json!({}),
        )
        .await;
    assert_eq!(restored.status, StatusCode::CREATED, "{}", restored.body);
    assert_eq!(restored.body["version"], 4);
    assert_eq!(restored.body["content_type"], "application/pdf");
    let (_, current, _) = bytes_of(&sam, &format!("/api/v1/documents/{doc}/content"), None).await;
    assert_eq!(current, PDF);
    let versions = sam.get(&format!("/api/v1/documents/{doc}/versions")).await;
    assert_eq!(versions.body[0]["reason"], "back to the original");
    assert_eq!(versions.body.as_array().unwrap().len(), 4);

    // Attached to a deal: listed from both sides, for those who read both.
    let deal = admin
        .create(
            "deals",
            json!({"name": "Acme renewal", "department": sales}),
        )
        .await;
    let deal_id = deal["id"].as_str().unwrap().to_string();
    let linked = sam
        .post(
            &format!("/api/v1/documents/{doc}/links"),
            json!({"object": "deals", "record_id": deal_id}),
        )
        .await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.body);
    assert_eq!(
        linked.body,
        json!([{"object": "deals", "record_id": deal_id}])
    );
    let of_deal = sam
        .get(&format!("/api/v1/records/deals/{deal_id}/documents"))
        .await;
    assert_eq!(of_deal.body[0]["id"], doc.as_str());
    assert_eq!(
        sue.get(&format!("/api/v1/records/deals/{deal_id}/documents"))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "support cannot read the deal"
    );
    let bad = sam
        .post(
            &format!("/api/v1/documents/{doc}/links"),
            json!({"object": "deals", "record_id": "nope"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);

    // The trash: out of lists, restorable, purged by an admin only from the trash.
    assert_eq!(
        admin
            .delete(&format!("/api/v1/documents/{doc}?purge=true"))
            .await
            .status,
        StatusCode::CONFLICT,
        "only from the trash"
    );
    assert_eq!(
        sam.delete(&format!("/api/v1/documents/{doc}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sam.get(&format!("/api/v1/documents/{doc}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(sam.get("/api/v1/documents").await.body["items"], json!([]));
    let trash = sam.get("/api/v1/documents?trash=true").await;
    assert_eq!(trash.body["items"][0]["id"], doc.as_str());
    assert_eq!(
        sam.get(&format!("/api/v1/records/deals/{deal_id}/documents"))
            .await
            .body,
        json!([])
    );
    let back = sam
        .post(&format!("/api/v1/documents/{doc}/restore"), json!({}))
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(back.body["deleted_at"], serde_json::Value::Null);
    assert_eq!(
        sam.delete(&format!("/api/v1/documents/{doc}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sam.delete(&format!("/api/v1/documents/{doc}?purge=true"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let blobs = srv.data_dir.path().join("documents/blobs");
    assert_eq!(files_under(&blobs), 3, "pdf, two, three");
    assert_eq!(
        admin
            .delete(&format!("/api/v1/documents/{doc}?purge=true"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(files_under(&blobs), 0, "content no version holds is gone");
    assert_eq!(
        admin.get(&format!("/api/v1/documents/{doc}")).await.status,
        StatusCode::NOT_FOUND
    );
}

/// A moto S3 server on a free port, stopped when dropped.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn moto() -> Option<Moto> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = crm_tests::reqwest::Client::new();
    for _ in 0..100 {
        if http.get(&moto.url).send().await.is_ok() {
            return Some(moto);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn documents_live_in_s3_compatible_storage(backend: Backend) {
    let Some(moto) = moto().await else {
        eprintln!(
            "SKIPPED documents_live_in_s3_compatible_storage: no S3-compatible server \
             (`python3 -m pip install 'moto[server]'` provides moto_server; .ci/run installs it)"
        );
        return;
    };
    let http = crm_tests::reqwest::Client::new();
    let bucket = http
        .put(format!("{}/crm-docs", moto.url))
        .send()
        .await
        .unwrap();
    assert!(
        bucket.status().is_success(),
        "creating the bucket: {}",
        bucket.status()
    );
    let srv = Server::start_with(
        backend,
        Options::default()
            .env("CRM_DOCUMENT_STORE", "s3://crm-docs/tenant-a")
            .env("CRM_S3_ENDPOINT", &moto.url)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1"),
    )
    .await;
    let admin = srv.admin().await;
    let f = folder(&admin, json!({"name": "Contracts"})).await;
    let created = upload(
        &admin,
        &format!("/api/v1/folders/{f}/documents?name=contract.pdf"),
        PDF.to_vec(),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let doc = created.body["id"].as_str().unwrap().to_string();
    let again = upload(
        &admin,
        &format!("/api/v1/folders/{f}/documents?name=copy.pdf"),
        PDF.to_vec(),
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::CREATED,
        "identical content: {}",
        again.body
    );
    let second = upload(
        &admin,
        &format!("/api/v1/documents/{doc}/versions?name=v2.txt&reason=signed"),
        b"signed copy".to_vec(),
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    let (status, body, _) = bytes_of(
        &admin,
        &format!("/api/v1/documents/{doc}/versions/1/content"),
        None,
    )
    .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, PDF));
    let (status, body, _) = bytes_of(
        &admin,
        &format!("/api/v1/documents/{doc}/content"),
        Some("bytes=7-10"),
    )
    .await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &b"copy"[..])
    );

    // The content is in the bucket, below the prefix, once per distinct content;
    // nothing went to the local data dir.
    let listing = http
        .get(format!(
            "{}/crm-docs?list-type=2&prefix=tenant-a/",
            moto.url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        listing.matches("<Key>tenant-a/blobs/").count(),
        2,
        "{listing}"
    );
    assert!(
        !listing.contains("tenant-a/tmp/"),
        "no temporary upload is left: {listing}"
    );
    assert_eq!(files_under(&srv.data_dir.path().join("documents")), 0);
    // A cut-off upload leaves nothing in the bucket either.
    let big = upload(
        &admin,
        &format!("/api/v1/folders/{f}/documents?name=empty.bin"),
        Vec::new(),
    )
    .await;
    assert_eq!(big.status, StatusCode::UNPROCESSABLE_ENTITY);
    let listing = http
        .get(format!(
            "{}/crm-docs?list-type=2&prefix=tenant-a/tmp/",
            moto.url
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listing.contains("<Key>"), "{listing}");
}

/// Downloads recorded in a document's history by `actor`.
async fn downloads_by(admin: &Client, doc: &str, actor: &str) -> usize {
    let history = admin.get(&format!("/api/v1/documents/{doc}/history")).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    history
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "downloaded" && e["actor"] == actor)
        .count()
}

/// Plugins read the library through `crm:plugin/documents` (WIT 0.1.1, served by the 0.1.2 host): as whoever
/// they act for (rights and shares), only in departments that enabled them and the
/// shared library, in reads of at most 1 MiB; a read from the start is audited.
/// The test plugin's routes (tests/plugins/hostile) and data-quality's attachment
/// check call it.
async fn plugins_read_documents_as_their_caller_where_they_are_enabled(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let support = admin.department("Support").await;
    admin
        .install_plugin(crm_tests::plugin_package("tests/plugins/hostile"), &sales)
        .await;
    admin
        .install_plugin(crm_tests::plugin_package("plugins/data-quality"), &sales)
        .await;
    let (sam_id, sam) = srv.member("sam@example.com", &sales, "member").await;
    let (pat_id, pat) = srv.member("pat@example.com", &sales, "partner").await;

    let offers = folder(&admin, json!({"name": "Offers", "department": sales})).await;
    let tickets = folder(&admin, json!({"name": "Tickets", "department": support})).await;
    let handbook = folder(&admin, json!({"name": "Handbook"})).await;
    let id_of = |res: crm_tests::Response| {
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["id"].as_str().unwrap().to_string()
    };
    let offer = id_of(
        upload(
            &admin,
            &format!("/api/v1/folders/{offers}/documents?name=offer.pdf&title=Offer"),
            PDF.to_vec(),
        )
        .await,
    );
    // Version 2: 3 MB, more than one read can carry.
    let scan: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let v2 = upload(
        &admin,
        &format!("/api/v1/documents/{offer}/versions?name=offer-scan.bin&reason=scanned"),
        scan.clone(),
    )
    .await;
    assert_eq!(v2.status, StatusCode::CREATED, "{}", v2.body);
    let ticket = id_of(
        upload(
            &admin,
            &format!("/api/v1/folders/{tickets}/documents?name=ticket.txt"),
            b"support only".to_vec(),
        )
        .await,
    );
    let guide = id_of(
        upload(
            &admin,
            &format!("/api/v1/folders/{handbook}/documents?name=guide.txt&title=Guide"),
            b"for everyone".to_vec(),
        )
        .await,
    );

    // Lists: sales' documents and the shared library, never support's, even for
    // an admin who reads support's library over REST.
    for caller in [&sam, &admin] {
        let listed = caller.get("/api/v1/x/hostile/documents").await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
        let ids = listed.body["ids"].to_string();
        assert!(ids.contains(&offer) && ids.contains(&guide), "{ids}");
        assert!(!ids.contains(&ticket), "support's document leaked: {ids}");
    }
    assert_eq!(
        admin
            .get(&format!("/api/v1/documents/{ticket}"))
            .await
            .status,
        StatusCode::OK
    );
    let hidden = admin
        .get(&format!("/api/v1/x/hostile/documents/{ticket}"))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
    assert!(
        hidden.text.contains("there is no such document"),
        "{}",
        hidden.text
    );
    // The REST list query passes through: search, pages, and a clear refusal.
    let found = sam.get("/api/v1/x/hostile/documents?q=guide").await;
    assert_eq!(found.body["ids"], json!([guide]), "{}", found.body);
    let page = sam.get("/api/v1/x/hostile/documents?limit=1").await;
    assert_eq!(page.body["ids"].as_array().unwrap().len(), 1);
    assert!(page.body["next_cursor"].is_string(), "{}", page.body);
    let bad = sam.get("/api/v1/x/hostile/documents?limit=lots").await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
    assert!(bad.text.contains("the query is not valid"), "{}", bad.text);
    let smuggled = sam.get("/api/v1/x/hostile/documents?within=x").await;
    assert!(
        smuggled.text.contains("the query is not valid"),
        "{}",
        smuggled.text
    );

    // Metadata and versions.
    let meta = sam
        .get(&format!("/api/v1/x/hostile/documents/{offer}"))
        .await;
    assert_eq!(meta.body["version"], 2, "{}", meta.body);
    assert_eq!(meta.body["size"], scan.len());
    let versions = sam
        .get(&format!("/api/v1/x/hostile/documents/{offer}/versions"))
        .await;
    assert_eq!(versions.body, json!([2, 1]));

    // Content: any version, by parts, nothing past the end, at most 1 MiB a read.
    let content = |path: String| {
        let (sam, url) = (&sam, format!("/api/v1/x/hostile/documents/{offer}/{path}"));
        async move { bytes_of(sam, &url, None).await }
    };
    let (status, body, _) = content("content?version=1".into()).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, PDF));
    let (status, body, _) = content("content?offset=1048576&length=1000".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, &scan[1_048_576..1_049_576]);
    let (status, body, _) = content("content?offset=2999990".into()).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, &scan[2_999_990..])
    );
    let (status, body, _) = content("content?offset=3000000".into()).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    let (status, body, _) = content("content?length=2000000".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        String::from_utf8_lossy(&body).contains("at most 1048576 bytes"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, _) = content("content?version=7".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The whole current version in three reads: one download in the history.
    let before = downloads_by(&admin, &offer, &sam_id).await;
    let all = sam
        .get(&format!("/api/v1/x/hostile/documents/{offer}/all"))
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let sum: u64 = scan.iter().map(|b| u64::from(*b)).sum();
    assert_eq!(all.body, json!({"bytes": scan.len(), "sum": sum}));
    assert_eq!(downloads_by(&admin, &offer, &sam_id).await, before + 1);

    // A partner in sales reads only the shared library and what is shared with it.
    let listed = pat.get("/api/v1/x/hostile/documents").await;
    assert_eq!(listed.body["ids"], json!([guide]), "{}", listed.body);
    assert_eq!(
        pat.get(&format!("/api/v1/x/hostile/documents/{offer}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let shared = admin
        .post(
            &format!("/api/v1/documents/{offer}/shares"),
            json!({"user": pat_id, "access": "read"}),
        )
        .await;
    assert_eq!(shared.status, StatusCode::CREATED, "{}", shared.body);
    let (status, body, _) = bytes_of(
        &pat,
        &format!("/api/v1/x/hostile/documents/{offer}/content?version=1"),
        None,
    )
    .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, PDF));

    // Documents of a record: the record must be where the plugin is enabled.
    let link = |doc: String, record: String| {
        let admin = &admin;
        async move {
            let res = admin
                .post(
                    &format!("/api/v1/documents/{doc}/links"),
                    json!({"object": "deals", "record_id": record}),
                )
                .await;
            assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        }
    };
    let deal = admin
        .create("deals", json!({"name": "Acme", "department": sales}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let support_deal = admin
        .create("deals", json!({"name": "Help", "department": support}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    link(offer.clone(), deal.clone()).await;
    link(ticket.clone(), support_deal.clone()).await;
    let attached = sam
        .get(&format!("/api/v1/x/hostile/attached/deals/{deal}"))
        .await;
    assert_eq!(attached.body, json!([offer]), "{}", attached.body);
    let refused = admin
        .get(&format!("/api/v1/x/hostile/attached/deals/{support_deal}"))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);

    // data-quality checks a lead's attachments: a name that lies about its content,
    // and the same content attached twice.
    let lead = sam
        .create(
            "leads",
            json!({"first_name": "Ana", "last_name": "Lima", "email": "ana@acme.example", "source": "Referral"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["notes.pdf", "notes-copy.txt"] {
        let doc = id_of(
            upload(
                &sam,
                &format!("/api/v1/folders/{offers}/documents?name={name}"),
                b"call back on Monday".to_vec(),
            )
            .await,
        );
        let res = sam
            .post(
                &format!("/api/v1/documents/{doc}/links"),
                json!({"object": "leads", "record_id": lead}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }
    let checked = sam
        .get(&format!("/api/v1/x/data-quality/attachments/leads/{lead}"))
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert_eq!(checked.body["documents"], 2);
    let problems = checked.body["problems"].to_string();
    assert!(
        problems.contains("named notes.pdf but holds text/plain"),
        "{problems}"
    );
    assert!(problems.contains("the same content as"), "{problems}");
}

/// Uploads that each fit what is left of a quota, but not together: whichever
/// commit comes second is refused (the commit holds the quota), however they
/// interleave.
async fn a_quota_holds_when_uploads_race_for_its_last_bytes(backend: Backend) {
    let srv = Server::start(backend).await;
    let admin = srv.admin().await;
    let sales = admin.department("Sales").await;
    let offers = folder(&admin, json!({"name": "Offers", "department": sales})).await;
    let quota = format!("/api/v1/departments/{sales}/document-quota");
    let set = admin.put(&quota, json!({"max_bytes": 1000})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    let mut uploads = tokio::task::JoinSet::new();
    for i in 0..6u8 {
        let admin = admin.clone();
        let path = format!("/api/v1/folders/{offers}/documents?name=part-{i}.bin");
        uploads.spawn(async move { upload(&admin, &path, vec![i; 600]).await });
    }
    let answers = uploads.join_all().await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::PAYLOAD_TOO_LARGE)
        .count();
    assert_eq!(
        (created, refused),
        (1, 5),
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    assert_eq!(admin.get(&quota).await.body["used_bytes"], 600);
    let listed = admin
        .get(&format!("/api/v1/documents?folder={offers}"))
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
}
