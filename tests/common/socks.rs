//! A SOCKS5 server on loopback standing in for Tor's SocksPort, for the `[network] proxy`
//! tests: RFC 1928 (CONNECT only) with RFC 1929 user name/password authentication (required,
//! as Tor's isolation relies on it), names resolved from its own table only (a name it does
//! not know is "host unreachable"; an address instead of a name is refused, since the agent
//! must leave every look-up to the proxy), and every outgoing connection made from
//! [`OUTGOING`] (127.0.0.2), so the local providers and Dovecot can refuse any peer that is
//! not this proxy. Each CONNECT is recorded with its credentials.
//!
//! It runs on a thread of its own with its own tokio runtime; [`SocksServer::stop`] ends it
//! and every tunnel it holds (Tor going down), [`SocksServer::restart`] binds the same port
//! again.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The address every outgoing connection of the proxy is made from.
pub const OUTGOING: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// One CONNECT the proxy was asked for.
#[derive(Debug, Clone)]
pub struct Connect {
    /// The RFC 1929 user name.
    pub username: String,
    /// The RFC 1929 password.
    pub password: String,
    /// The destination as asked: a name (or an address, which is refused).
    pub host: String,
    /// The destination port.
    pub port: u16,
    /// Whether the proxy connected it.
    pub connected: bool,
    /// When it was asked.
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    table: Mutex<HashMap<String, IpAddr>>,
    connects: Mutex<Vec<Connect>>,
}

/// A running (or stopped) SOCKS5 server.
pub struct SocksServer {
    /// Where it listens (127.0.0.1, a port of its own).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SocksServer {
    /// Starts a server that resolves the names of `table` (name, address).
    pub fn start(table: &[(&str, IpAddr)]) -> SocksServer {
        let shared = Arc::new(Shared::default());
        shared
            .table
            .lock()
            .unwrap()
            .extend(table.iter().map(|(n, a)| (n.to_ascii_lowercase(), *a)));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("socks: bind");
        let addr = listener.local_addr().expect("socks: addr");
        let mut server = SocksServer {
            addr,
            shared,
            stop: None,
            thread: None,
        };
        server.serve(listener);
        server
    }

    /// `socks5h://127.0.0.1:PORT`, for `[network] proxy`.
    pub fn url(&self) -> String {
        format!("socks5h://{}", self.addr)
    }

    /// Every CONNECT asked so far, in order.
    pub fn connects(&self) -> Vec<Connect> {
        self.shared.connects.lock().unwrap().clone()
    }

    /// Stops listening and drops every tunnel (the proxy goes down).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Listens again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let listener = std::net::TcpListener::bind(self.addr).expect("socks: bind again");
        self.serve(listener);
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).expect("socks: nonblocking");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("socks5".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("socks: runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("socks: listener");
                    let accept = async {
                        loop {
                            let Ok((client, _)) = listener.accept().await else {
                                continue;
                            };
                            tokio::spawn(session(client, shared.clone()));
                        }
                    };
                    tokio::select! {
                        _ = accept => {}
                        _ = rx => {}
                    }
                });
                // Every tunnel still open is dropped with the runtime.
                rt.shutdown_background();
            })
            .expect("socks: thread");
        self.stop = Some(tx);
        self.thread = Some(thread);
    }
}

impl Drop for SocksServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One client: method negotiation, authentication, CONNECT, then bytes both ways.
async fn session(mut client: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; head[1] as usize];
    client.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&2) {
        // Only user name/password: a client without credentials gets no circuit of its own.
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, 2]).await?;
    // RFC 1929: VER=1, ULEN, UNAME, PLEN, PASSWD.
    let mut v = [0u8; 2];
    client.read_exact(&mut v).await?;
    let mut user = vec![0u8; v[1] as usize];
    client.read_exact(&mut user).await?;
    let mut plen = [0u8; 1];
    client.read_exact(&mut plen).await?;
    let mut pass = vec![0u8; plen[0] as usize];
    client.read_exact(&mut pass).await?;
    client.write_all(&[1, 0]).await?;
    // The request: VER CMD RSV ATYP DST.ADDR DST.PORT.
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    let (host, by_name) = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await?;
            (Ipv4Addr::from(a).to_string(), false)
        }
        3 => {
            let mut n = [0u8; 1];
            client.read_exact(&mut n).await?;
            let mut name = vec![0u8; n[0] as usize];
            client.read_exact(&mut name).await?;
            (String::from_utf8_lossy(&name).to_string(), true)
        }
        4 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a).await?;
            (std::net::Ipv6Addr::from(a).to_string(), false)
        }
        _ => return Ok(()),
    };
    let mut p = [0u8; 2];
    client.read_exact(&mut p).await?;
    let port = u16::from_be_bytes(p);
    let target = if by_name && req[1] == 1 {
        shared
            .table
            .lock()
            .unwrap()
            .get(&host.to_ascii_lowercase())
            .copied()
    } else {
        None
    };
    let upstream = match target {
        Some(ip) => connect_from_outgoing(SocketAddr::new(ip, port)).await.ok(),
        None => None,
    };
    shared.connects.lock().unwrap().push(Connect {
        username: String::from_utf8_lossy(&user).to_string(),
        password: String::from_utf8_lossy(&pass).to_string(),
        host,
        port,
        connected: upstream.is_some(),
        at: Instant::now(),
    });
    let Some(mut upstream) = upstream else {
        // 0x04: host unreachable (an unknown name, an address, or a refused connection).
        client.write_all(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    client.write_all(&[5, 0, 0, 1, 127, 0, 0, 2, 0, 0]).await?;
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    Ok(())
}

async fn connect_from_outgoing(to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(OUTGOING, 0))?;
    socket.connect(to).await
}
