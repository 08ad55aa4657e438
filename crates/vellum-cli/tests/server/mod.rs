//! `vellum serve` as the CLI's tests run it: a real process on a free port, and plain HTTP/1.1
//! requests to it over fresh connections.

use std::{process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

/// A running `vellum serve`, killed when dropped (also when an assertion fails).
pub(crate) struct Server {
    _process: Child,
    /// Where it listens, `127.0.0.1:<port>`.
    pub(crate) addr: String,
    /// The worker threads it said it runs on.
    pub(crate) workers: usize,
}

impl Server {
    /// Starts the `vellum` binary with `args` (which include `serve`), `--listen 127.0.0.1:0`
    /// added, and the environment `configure` sets, then waits until it listens. Its stderr is
    /// read on and dropped from then on.
    pub(crate) async fn start(args: &[&str], configure: impl FnOnce(&mut Command)) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vellum"));
        command.args(args).args(["--listen", "127.0.0.1:0"]);
        configure(&mut command);
        let mut process = command
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the vellum binary runs");
        let mut stderr = BufReader::new(process.stderr.take().unwrap()).lines();
        let mut addr = None;
        // The worker threads are reported right after the address.
        let workers = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line())
                .await
                .expect("the server starts")
                .unwrap()
                .expect("the server is running");
            if let Some(rest) = line.strip_prefix("vellum listening on http://") {
                addr = rest.split(' ').next().map(str::to_string);
            }
            if let Some(rest) = line.strip_prefix("worker threads: ") {
                break rest.split(' ').next().unwrap().parse().unwrap();
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        Server {
            _process: process,
            addr: addr.expect("the address comes before the worker threads"),
            workers,
        }
    }

    /// One request with `token` as the bearer (and a JSON `body`, if any) over a fresh
    /// connection; the answer's status code and body.
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, String) {
        let addr = &self.addr;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }
}
