//! Network peers for fault and outbound tests: a port that accepts and never answers, a
//! port that refuses, and a small HTTP server whose answers a test scripts.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A port that accepts TCP connections and never answers, holding every connection until
/// it is closed (or dropped); closing frees the port.
#[derive(Debug)]
pub struct SilentPort {
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    /// The port.
    pub port: u16,
}

impl SilentPort {
    /// Bind a free loopback port.
    pub fn bind() -> Self {
        Self::bind_on(0)
    }

    /// Bind `port` (for example the port of a server a test just stopped).
    pub fn bind_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot bind the silent port {port}: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (keep, stopped) = (Arc::clone(&held), Arc::clone(&stop));
        // The thread owns the listener: when it returns, the port is free.
        let accept = std::thread::spawn(move || {
            for s in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                match s {
                    // Keep it open, say nothing.
                    Ok(s) => keep.lock().unwrap_or_else(|p| p.into_inner()).push(s),
                    Err(_) => return,
                }
            }
        });
        Self {
            stop,
            accept: Some(accept),
            held,
            port,
        }
    }

    /// Stop accepting and close every connection held, freeing the port.
    pub fn close(&mut self) {
        if let Some(accept) = self.accept.take() {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the accept loop so it sees the stop and drops the listener.
            let _ = TcpStream::connect(("127.0.0.1", self.port));
            let _ = accept.join();
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for s in held.drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for SilentPort {
    fn drop(&mut self) {
        self.close();
    }
}

/// A loopback port nothing listens on (connections are refused).
pub fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A request an [`HttpServer`] received.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Request line and headers, lowercased.
    pub head: String,
    /// The body (`content-length` bytes).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What an [`HttpServer`] answers.
#[derive(Debug, Clone)]
pub enum HttpReply {
    /// These bytes, as they are (status line, headers, body).
    Raw(Vec<u8>),
    /// `200 OK` with this JSON body and extra headers (`name: value`).
    Json(serde_json::Value, Vec<String>),
    /// This head, then `chunk` written `times` times (a huge body streamed until the
    /// client hangs up).
    Stream(String, Vec<u8>, usize),
}

type Answer = dyn Fn(&HttpRequest) -> HttpReply + Send + Sync;

/// A small HTTP/1.1 server on a free loopback port: one thread per connection, one
/// request per connection; each request is recorded, then answered by the test's function
/// (which may block: forward it elsewhere, sleep).
#[derive(Clone)]
pub struct HttpServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    requests: Arc<Mutex<Vec<HttpRequest>>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("url", &self.url)
            .finish()
    }
}

impl HttpServer {
    /// Start one answering with `answer`.
    pub fn start(answer: impl Fn(&HttpRequest) -> HttpReply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests: Arc<Mutex<Vec<HttpRequest>>> = Arc::default();
        let seen = Arc::clone(&requests);
        let answer: Arc<Answer> = Arc::new(answer);
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(sock) = sock else { return };
                let (seen, answer) = (Arc::clone(&seen), Arc::clone(&answer));
                std::thread::spawn(move || serve(sock, &seen, &*answer));
            }
        });
        Self { url, requests }
    }

    /// `host:port`.
    pub fn host_port(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn serve(mut sock: TcpStream, seen: &Mutex<Vec<HttpRequest>>, answer: &Answer) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let request = HttpRequest {
        head,
        body: buf[head_end..head_end + len].to_vec(),
    };
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(request.clone());
    match answer(&request) {
        HttpReply::Raw(bytes) => {
            let _ = sock.write_all(&bytes);
        }
        HttpReply::Json(body, headers) => {
            let body = body.to_string();
            let mut head = String::from("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n");
            for h in headers {
                head.push_str(&h);
                head.push_str("\r\n");
            }
            let reply = format!(
                "{head}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(reply.as_bytes());
        }
        HttpReply::Stream(head, chunk, times) => {
            if sock.write_all(head.as_bytes()).is_err() {
                return;
            }
            for _ in 0..times {
                if sock.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
    }
}
