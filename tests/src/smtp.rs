//! A small SMTP server for tests, standing in for a company's mail relay.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A message the SMTP server accepted: its recipients and its text.
#[derive(Clone, Debug)]
pub struct Received {
    pub to: Vec<String>,
    pub text: String,
}

/// An SMTP server on a free port that accepts every recipient but those at
/// `refused.example` (550); answers its address and what it received.
pub async fn smtp_server() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let inbox: Arc<Mutex<Vec<Received>>> = Arc::default();
    let kept = inbox.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let inbox = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 relay.test ESMTP\r\n").await.ok();
                let mut to = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        "250 relay.test\r\n".to_string()
                    } else if upper.starts_with("RCPT TO:") {
                        if line.contains("@refused.example") {
                            "550 5.1.1 no such mailbox here\r\n".to_string()
                        } else {
                            to.push(line[8..].trim().to_string());
                            "250 ok\r\n".to_string()
                        }
                    } else if upper.starts_with("DATA") {
                        write.write_all(b"354 go on\r\n").await.ok();
                        let mut text = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            text.push_str(&l);
                            text.push('\n');
                        }
                        inbox.lock().unwrap().push(Received {
                            to: std::mem::take(&mut to),
                            text,
                        });
                        "250 queued\r\n".to_string()
                    } else if upper.starts_with("QUIT") {
                        write.write_all(b"221 bye\r\n").await.ok();
                        return;
                    } else if upper.starts_with("RSET") {
                        to.clear();
                        "250 ok\r\n".to_string()
                    } else {
                        "250 ok\r\n".to_string()
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, inbox)
}
