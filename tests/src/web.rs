//! A browser session over plain HTTP (a cookie and the CSRF token of its forms),
//! for tests of the web pages that need no JavaScript.

use reqwest::StatusCode;

use crate::Server;

/// A page as the server answered it.
pub struct Page {
    pub status: StatusCode,
    /// Where a redirect points.
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub content_type: String,
    pub html: String,
}

/// A signed-in browser: its session cookie and the CSRF token its forms carry.
pub struct WebSession {
    http: reqwest::Client,
    base: String,
    pub cookie: String,
    pub csrf: String,
}

/// A client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.extend_pairs(pairs);
    s.finish()
}

pub async fn page(rb: reqwest::RequestBuilder) -> Page {
    let res = rb.send().await.expect("the server answers");
    let header = |name| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Page {
        status: res.status(),
        location: header(reqwest::header::LOCATION),
        set_cookie: header(reqwest::header::SET_COOKIE),
        content_type: header(reqwest::header::CONTENT_TYPE).unwrap_or_default(),
        html: res.text().await.unwrap_or_default(),
    }
}

/// The `value` of the first input named `name` on a page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let start = html[..at].rfind('<')?;
    let tag = &html[start..at + html[at..].find('>')?];
    let value = &tag[tag.find(" value=\"")? + 8..];
    Some(value[..value.find('"')?].to_string())
}

impl WebSession {
    /// Signs in through the sign-in form.
    pub async fn sign_in(srv: &Server, email: &str, password: &str) -> WebSession {
        let http = client();
        let signed = page(
            http.post(srv.url("/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("email", email),
                    ("password", password),
                    ("next", "/"),
                ])),
        )
        .await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.html);
        let cookie = signed
            .set_cookie
            .expect("a session cookie")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let mut session = WebSession {
            http,
            base: srv.base.clone(),
            cookie,
            csrf: String::new(),
        };
        let home = session.get("/").await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.html);
        session.csrf = input_value(&home.html, "_csrf").expect("a CSRF token on the page");
        session
    }

    pub async fn get(&self, path: &str) -> Page {
        page(
            self.http
                .get(format!("{}{path}", self.base))
                .header("cookie", &self.cookie),
        )
        .await
    }

    /// Submits a form with this session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, false).await
    }

    /// Uploads `bytes` as the file field `field` of a multipart form, with this
    /// session's CSRF token as its first part.
    pub async fn upload(&self, path: &str, field: &str, bytes: &[u8]) -> Page {
        let csrf = self.csrf.clone();
        self.multipart(path, &[("_csrf", &csrf)], field, bytes)
            .await
    }

    /// Posts a multipart form: `texts` in order, then the file `field`.
    pub async fn multipart(
        &self,
        path: &str,
        texts: &[(&str, &str)],
        field: &str,
        bytes: &[u8],
    ) -> Page {
        let boundary = "crm-test-boundary-7d3a";
        let mut body = Vec::new();
        for (name, value) in texts {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"{field}\"; filename=\"upload.bin\"\r\ncontent-type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        page(
            self.http
                .post(format!("{}{path}", self.base))
                .header("cookie", &self.cookie)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body),
        )
        .await
    }

    /// Submits exactly `fields`; `fragment` asks for the page script's answer.
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)], fragment: bool) -> Page {
        let mut rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields));
        if fragment {
            rb = rb.header("x-crm-fragment", "1");
        }
        page(rb).await
    }
}
