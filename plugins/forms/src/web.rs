//! The HTML side: the form page (no script; the host serves plugin pages in a
//! sandbox), the thank-you page, and form-encoded bodies.

use crm_plugin_sdk::{HttpResponse, Map, Value};

use crate::form::{Form, HONEYPOT, Problem};

/// Text made safe inside HTML (element content and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(status: u16, title: &str, body: &str) -> HttpResponse {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>body{{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}\
         label{{display:block;margin-top:1rem}}input,select,textarea{{width:100%;padding:.4rem}}\
         .trap{{position:absolute;left:-10000px}}.error{{color:#b00}}</style></head><body>{body}</body></html>",
        escape(title)
    );
    HttpResponse {
        status,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: page.into_bytes(),
    }
}

/// The form as a page, with the problems of a refused submission.
pub fn page(status: u16, slug: &str, form: &Form, problems: &[Problem]) -> HttpResponse {
    let mut body = format!("<h1>{}</h1>", escape(&form.title));
    if !problems.is_empty() {
        body.push_str("<ul class=\"error\">");
        for (field, message) in problems {
            body.push_str(&format!("<li>{}: {}</li>", escape(field), escape(message)));
        }
        body.push_str("</ul>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/public/forms/f/{}\">",
        escape(slug)
    ));
    for f in &form.questions() {
        let label = if f.label.is_empty() {
            &f.name
        } else {
            &f.label
        };
        let name = escape(&f.name);
        let required = if f.required { " required" } else { "" };
        let mut note = String::new();
        if let Some(cond) = &f.show_if {
            note = format!(
                " <small>(only when {} is {})</small>",
                escape(&cond.field),
                escape(&cond.equals)
            );
        }
        body.push_str(&format!(
            "<label for=\"{name}\">{}{}{note}</label>",
            escape(label),
            if f.required { " *" } else { "" }
        ));
        let input = match f.kind.as_str() {
            "textarea" => format!("<textarea id=\"{name}\" name=\"{name}\"{required}></textarea>"),
            "select" => {
                let options: String = f
                    .options
                    .iter()
                    .map(|o| format!("<option>{}</option>", escape(o)))
                    .collect();
                format!(
                    "<select id=\"{name}\" name=\"{name}\"{required}><option value=\"\"></option>{options}</select>"
                )
            }
            kind => {
                let html_type = match kind {
                    "email" => "email",
                    "phone" => "tel",
                    "number" => "number",
                    _ => "text",
                };
                format!("<input id=\"{name}\" name=\"{name}\" type=\"{html_type}\"{required}>")
            }
        };
        body.push_str(&input);
        if !f.help.is_empty() {
            body.push_str(&format!("<small>{}</small>", escape(&f.help)));
        }
    }
    body.push_str(&format!(
        "<div class=\"trap\" aria-hidden=\"true\"><label>Leave empty<input name=\"{HONEYPOT}\" tabindex=\"-1\" autocomplete=\"off\"></label></div>\
         <p><button type=\"submit\">Send</button></p></form>"
    ));
    html(status, &form.title, &body)
}

pub fn thanks(form: &Form) -> HttpResponse {
    html(
        200,
        &form.title,
        &format!("<p>{}</p>", escape(&form.thank_you)),
    )
}

/// `application/x-www-form-urlencoded` answers (a repeated name keeps the last).
pub fn decode_form(body: &[u8]) -> Map<String, Value> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), Value::String(decode(v)))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A value made safe inside a query string.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode_and_values_encode() {
        let answers =
            decode_form(b"last_name=O%27Neil&email=a%2Bb%40x.example&note=two+words&bad=%zz");
        assert_eq!(answers["last_name"], "O'Neil");
        assert_eq!(answers["email"], "a+b@x.example");
        assert_eq!(answers["note"], "two words");
        assert_eq!(answers["bad"], "%zz");
        assert_eq!(encode("a+b@x.example"), "a%2Bb@x.example");
        assert_eq!(escape("<b>\"x\"</b>"), "&lt;b&gt;&quot;x&quot;&lt;/b&gt;");
    }
}
