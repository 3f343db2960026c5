//! Document benchmark: upload and download of a large file through a release
//! `crm serve` (streamed to and from the local store, hashed on the way in), beside
//! a plain copy of the same file on the same disk measured in the same run, and the
//! server's memory growth while it does so.
//!
//! Run with `cargo bench -p crm-tests --bench documents` (`CRM_BENCH_DOC_MIB` sets
//! the size, default 1024). Targets are reported as PASS or MISS, never asserted.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use crm_tests::reqwest::StatusCode;
use crm_tests::{Backend, Options, Server, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upload and download each at least this share of the plain copy's throughput.
const TARGET_RATIO: f64 = 0.7;
/// The server's RSS may grow by less than this while moving the file.
const TARGET_RSS_GROWTH_MB: f64 = 50.0;

/// Peak resident memory of a process in MB (VmHWM).
fn peak_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak (VmHWM) to the current RSS, so the peak of one phase is measured.
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// How long SHA-256 (the `sha2` crate the server uses, SHA-NI where the CPU has
/// it) takes over `bytes` bytes held in memory, on one core: no upload that hashes
/// its content as it arrives can be faster.
fn sha256_alone(bytes: u64) -> Duration {
    use sha2::Digest;
    let buf: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let rounds = (bytes / buf.len() as u64).max(1);
    let started = Instant::now();
    let mut hasher = sha2::Sha256::new();
    for _ in 0..rounds {
        hasher.update(&buf);
    }
    std::hint::black_box(hasher.finalize());
    started
        .elapsed()
        .mul_f64(bytes as f64 / (rounds * buf.len() as u64) as f64)
}

/// Moves `source` over loopback TCP between two threads, 1 MiB per call, as a
/// client and server without HTTP would: the sender reads the file and sends it;
/// the receiver writes what it gets to `sink`, or drops it when `sink` is `None`.
/// The floor a network upload or download stands on, on the same two cores.
fn loopback(source: &std::path::Path, sink: Option<&std::path::Path>) -> Duration {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Instant::now();
    let source = source.to_path_buf();
    let sender = std::thread::spawn(move || {
        let mut file = std::fs::File::open(source).unwrap();
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            socket.write_all(&buf[..n]).unwrap();
        }
    });
    let (mut socket, _) = listener.accept().unwrap();
    let mut out = sink.map(|p| std::fs::File::create(p).unwrap());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = socket.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if let Some(out) = out.as_mut() {
            out.write_all(&buf[..n]).unwrap();
        }
    }
    sender.join().unwrap();
    let took = started.elapsed();
    if let Some(p) = sink {
        std::fs::remove_file(p).unwrap();
        let _ = std::process::Command::new("sync").status();
    }
    took
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let started = Instant::now();
    let mib: u64 = std::env::var("CRM_BENCH_DOC_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let size = mib << 20;
    println!();
    println!("crm document benchmark: release `crm serve`, SQLite, local store, loopback HTTP");
    println!("{}", "=".repeat(78));
    let srv = Server::start_with(
        Backend::Sqlite,
        Options {
            release: true,
            ..Default::default()
        }
        .env("CRM_MAX_UPLOAD_BYTES", &(size + 1).to_string()),
    )
    .await;
    let pid = srv.pid().expect("server pid");
    let admin = srv.admin().await;
    let folder = admin
        .post("/api/v1/folders", json!({"name": "Bench"}))
        .await;
    assert_eq!(folder.status, StatusCode::CREATED, "{}", folder.body);
    let folder = folder.body["id"].as_str().unwrap().to_string();

    // The file, on the disk the server's data dir is on, of bytes no compressor or
    // dedup would shortcut.
    progress("writing the source file");
    let dir = srv.data_dir.path().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("source.bin");
    {
        let mut rng = Rng::new();
        let mut file = std::io::BufWriter::new(std::fs::File::create(&source).unwrap());
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for word in chunk.chunks_mut(8) {
                rng.code();
                word.copy_from_slice(&rng.0.to_le_bytes());
            }
            file.write_all(&chunk).unwrap();
        }
        file.flush().unwrap();
    }

    println!();
    println!("[1] Baseline: copies of the {mib} MiB file on the same disk");
    // A copy through user space, 1 MiB at a time (read, then write): what a server
    // moving the bytes itself can aim for. `std::fs::copy` lets the kernel copy
    // page-cached data without it ever reaching user space; shown beside it.
    // Written back first, so no copy competes with the source's own writeback; the
    // best of two runs, as the server's figures are measured warm too.
    let _ = std::process::Command::new("sync").status();
    let copy = (0..2)
        .map(|_| {
            use std::io::Read;
            let started = Instant::now();
            let mut from = std::fs::File::open(&source).unwrap();
            let mut to = std::fs::File::create(dir.join("copy.bin")).unwrap();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = from.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                to.write_all(&buf[..n]).unwrap();
            }
            to.flush().unwrap();
            drop(to);
            let took = started.elapsed();
            std::fs::remove_file(dir.join("copy.bin")).unwrap();
            let _ = std::process::Command::new("sync").status();
            took
        })
        .min()
        .unwrap();
    row(
        "read/write copy, 1 MiB buffer",
        &format!("{:.0} MB/s", mb_per_s(size, copy)),
        &format!("({mib} MiB in {:.2} s)   THE baseline", copy.as_secs_f64()),
    );
    let kernel_started = Instant::now();
    std::fs::copy(&source, dir.join("copy.bin")).unwrap();
    let kernel = kernel_started.elapsed();
    std::fs::remove_file(dir.join("copy.bin")).unwrap();
    let _ = std::process::Command::new("sync").status();
    row(
        "std::fs::copy (in the kernel)",
        &format!("{:.0} MB/s", mb_per_s(size, kernel)),
        "(info)",
    );

    // Information beside the baseline (the targets stay against the copy): moving
    // the file over loopback TCP without HTTP or the store, on the same two cores,
    // and SHA-256 alone, which every upload must also do once per byte.
    let tcp_in = loopback(&source, Some(&dir.join("received.bin")));
    let tcp_out = loopback(&source, None);
    let sha256 = sha256_alone(size);
    for (what, took, note) in [
        ("loopback TCP in, written", tcp_in, "info: no HTTP, no hash"),
        ("loopback TCP out, dropped", tcp_out, "info: no HTTP"),
        (
            "SHA-256 alone, one core",
            sha256,
            "info: an upload's ceiling",
        ),
    ] {
        row(
            what,
            &format!("{:.0} MB/s", mb_per_s(size, took)),
            &format!("{:.2}x the copy ({note})", ratio(copy, took)),
        );
    }

    let addr = srv.base.trim_start_matches("http://").to_string();
    let token = admin.token.clone().unwrap();

    println!();
    println!("[2] Upload: POST /api/v1/folders/{{id}}/documents, the file as the body (best of 2)");
    // Best of two, as the copy is (the second upload finds its content stored and
    // drops its temporary file instead of renaming it); memory: the larger peak.
    let mut upload = Duration::MAX;
    let mut upload_peak: f64 = 0.0;
    let mut id = String::new();
    for round in 0..2 {
        let rss_before = rss_mb(pid).unwrap_or(0.0);
        reset_peak(pid);
        let started = Instant::now();
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/folders/{folder}/documents?name=big-{round}.bin HTTP/1.1\r\nhost: {addr}\r\n\
             authorization: Bearer {token}\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        // Read in large chunks: tokio's file reads are blocking calls, 8 KiB each by
        // default, which would make the client the bottleneck.
        let file = tokio::fs::File::open(&source).await.unwrap();
        let mut file = tokio::io::BufReader::with_capacity(1 << 20, file);
        tokio::io::copy_buf(&mut file, &mut socket).await.unwrap();
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.unwrap();
        upload = upload.min(started.elapsed());
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let doc: serde_json::Value = serde_json::from_str(body).unwrap();
        id = doc["id"].as_str().unwrap().to_string();
        upload_peak = upload_peak.max(peak_mb(pid).unwrap_or(0.0) - rss_before);
    }
    let upload_ratio = ratio(copy, upload);
    row(
        "upload",
        &format!("{:.0} MB/s", mb_per_s(size, upload)),
        &format!(
            "{upload_ratio:.2}x the copy ({:.2}x SHA-256 alone)  {}",
            ratio(sha256, upload),
            target(upload_ratio >= TARGET_RATIO, "at least 0.70x")
        ),
    );
    row(
        "server RSS growth (peak)",
        &format!("{upload_peak:.1} MB"),
        &target(upload_peak < TARGET_RSS_GROWTH_MB, "< 50 MB"),
    );

    println!();
    println!("[3] Download: GET /api/v1/documents/{{id}}/content (best of 2)");
    let mut download = Duration::MAX;
    let mut download_peak: f64 = 0.0;
    for _ in 0..2 {
        let rss_before = rss_mb(pid).unwrap_or(0.0);
        reset_peak(pid);
        let started = Instant::now();
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "GET /api/v1/documents/{id}/content HTTP/1.1\r\nhost: {addr}\r\n\
             authorization: Bearer {token}\r\nconnection: close\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut received: u64 = 0;
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            received += n as u64;
        }
        download = download.min(started.elapsed());
        assert!(received >= size, "received {received} of {size} bytes");
        download_peak = download_peak.max(peak_mb(pid).unwrap_or(0.0) - rss_before);
    }
    let download_ratio = ratio(copy, download);
    row(
        "download",
        &format!("{:.0} MB/s", mb_per_s(size, download)),
        &format!(
            "{download_ratio:.2}x the copy ({:.2}x TCP out)  {}",
            ratio(tcp_out, download),
            target(download_ratio >= TARGET_RATIO, "at least 0.70x")
        ),
    );
    row(
        "server RSS growth (peak)",
        &format!("{download_peak:.1} MB"),
        &target(download_peak < TARGET_RSS_GROWTH_MB, "< 50 MB"),
    );

    println!();
    println!("whole run: {:.0} s", started.elapsed().as_secs_f64());
}
