//! An object's bytes from the node that lends it, on a connection of
//! their own: the data path beside the gRPC control path, on the same
//! port.
//!
//! A pull sends one short request and reads the bytes straight from the
//! socket into the object's memory, which the kernel fills in one copy,
//! digesting each piece on another thread while the next arrives, and
//! the caller checks the digest against the one that names them.
//! gRPC added three copies of every byte (protobuf framing on both sides,
//! HTTP/2's buffers) and held a pull to about 0.9 GB/s on loopback here;
//! this path reaches the kernel's socket speed (`docs/cluster.md`).
//!
//! A connection whose first 8 bytes are [`MAGIC`] is a pull; anything
//! else (an HTTP/2 preface) goes to the gRPC server ([`incoming`]). Over
//! TLS (`tls.rs`), the protocol the client asked for tells them apart,
//! and the bytes below travel inside it. The
//! request: `MAGIC`, the token's length (u16, little-endian) and the
//! cluster token, the 32-byte digest, and 1 to release a result parked
//! for this pull (0 otherwise). The reply: 0, the length (u64), the
//! bytes; or 1, a message's length (u32) and the message (why not).

use super::tls::{PULL_ALPN, Tls};
use crate::objects::blob::{Blob, Filling};
use futures_util::Stream;
use std::io::{Read, Write};
use std::net::{TcpStream as StdStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The first bytes of a pull's connection.
const MAGIC: &[u8; 8] = b"WRAYPULL";
/// The longest cluster token a request may carry.
const MAX_TOKEN: usize = 4096;
/// How long a new connection may take to say what it is.
const SNIFF_FOR: Duration = Duration::from_secs(10);
/// How long a pull waits for the next bytes before it fails (the holder
/// hung, or the network did).
const STALL: Duration = Duration::from_secs(30);
/// How long connecting to the holder may take.
const CONNECT_FOR: Duration = Duration::from_secs(5);

/// What a node lends others to pull (the RPC service's state).
pub(super) trait Lender: Send + Sync + 'static {
    /// Whether `got` is the cluster's token.
    fn token_ok(&self, got: Option<&[u8]>) -> bool;

    /// The object lent under `digest`; `release`: the pull a parked
    /// result waited for, after which it goes.
    fn lent(&self, digest: &[u8; 32], release: bool) -> Option<Arc<Blob>>;
}

/// A connection from another node for the gRPC server: plain, or TLS.
pub(super) enum Conn {
    /// Without TLS.
    Plain(TcpStream),
    /// Over TLS, handshake done.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What the gRPC service learns of a connection: whether it came over
/// TLS (a node that talks TLS refuses calls that did not).
#[derive(Clone, Copy, Debug)]
pub(super) struct OverTls(pub bool);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = OverTls;

    fn connect_info(&self) -> OverTls {
        OverTls(matches!(self, Conn::Tls(_)))
    }
}

/// The connections `listener` accepts that are not pulls, for the gRPC
/// server; pulls are served here, each on a task of its own. With `tls`,
/// every connection must complete its handshake first.
pub(super) fn incoming(
    listener: TcpListener,
    shared: Arc<dyn Lender>,
    tls: Option<Arc<Tls>>,
) -> impl Stream<Item = std::io::Result<Conn>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Conn>>(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => return, // The server stopped.
                a = listener.accept() => a,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors, say: wait, and go on.
                    eprintln!("wray: accepting a connection from another node: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (tx, shared, tls) = (tx.clone(), shared.clone(), tls.clone());
            tokio::spawn(async move {
                let conn = match tls {
                    // A node without TLS calling: its calls are refused,
                    // saying why (a pull's connection is dropped).
                    Some(_) if plain(&stream).await => Conn::Plain(stream),
                    Some(tls) => {
                        // A peer without a certificate of the cluster's
                        // CA fails here.
                        let handshake = tls.acceptor().accept(stream);
                        let Ok(Ok(s)) = tokio::time::timeout(SNIFF_FOR, handshake).await else {
                            return;
                        };
                        if s.get_ref().1.alpn_protocol() == Some(PULL_ALPN) {
                            return serve(&shared, s).await;
                        }
                        Conn::Tls(Box::new(s))
                    }
                    None => {
                        let mut first = [0u8; MAGIC.len()];
                        let said =
                            tokio::time::timeout(SNIFF_FOR, peek_exact(&stream, &mut first)).await;
                        match said {
                            Ok(Ok(())) if &first == MAGIC => return serve(&shared, stream).await,
                            Ok(Ok(())) => Conn::Plain(stream),
                            // Silent, or gone: dropped.
                            _ => return,
                        }
                    }
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        let next = rx.recv().await?;
        Some((next, rx))
    })
}

/// Whether the peer's first byte says it is not starting TLS (a TLS
/// handshake record starts with 22), leaving it unread.
async fn plain(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(SNIFF_FOR, peek_exact(stream, &mut first)).await;
    matches!(peeked, Ok(Ok(()))) && first[0] != 22
}

/// Fills `buf` with the first bytes the peer sent, leaving them unread.
async fn peek_exact(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    loop {
        let n = stream.peek(buf).await?;
        if n == buf.len() {
            return Ok(());
        }
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        // Part of it came: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Serves one pull: reads the request, writes the reply.
async fn serve(shared: &Arc<dyn Lender>, mut stream: impl AsyncRead + AsyncWrite + Unpin) {
    let reply = async {
        let mut head = [0u8; MAGIC.len() + 2];
        stream.read_exact(&mut head).await.ok()?;
        let token_len = u16::from_le_bytes([head[8], head[9]]) as usize;
        if token_len > MAX_TOKEN {
            return None;
        }
        let mut rest = vec![0u8; token_len + 33];
        stream.read_exact(&mut rest).await.ok()?;
        let (token, rest) = rest.split_at(token_len);
        let digest: [u8; 32] = rest[..32].try_into().expect("32 bytes");
        let release = rest[32] == 1;
        if !shared.token_ok(Some(token)) {
            return Some(Err(
                "this node serves only nodes of its cluster (a wrong or missing cluster token)"
                    .to_string(),
            ));
        }
        let Some(blob) = shared.lent(&digest, release) else {
            return Some(Err("no such object is lent here".to_string()));
        };
        Some(blob.load().await.map_err(|e| e.to_string()))
    };
    let Some(reply) = reply.await else {
        return; // Not a request: dropped.
    };
    let _ = match reply {
        Ok(bytes) => {
            let mut head = [0u8; 9];
            head[1..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            match stream.write_all(&head).await {
                Ok(()) => stream.write_all(&bytes).await,
                Err(e) => Err(e),
            }
        }
        Err(why) => {
            let why = why.as_bytes();
            let mut reply = vec![1u8];
            reply.extend_from_slice(&(why.len() as u32).to_le_bytes());
            reply.extend_from_slice(why);
            stream.write_all(&reply).await
        }
    };
    let _ = stream.shutdown().await;
}

/// Pulls the object `digest` from `holder` into `filling` (which has its
/// length), blocking: the bytes go straight from the socket into it, and
/// are digested on another thread as they arrive. The digest of the bytes
/// that came (the caller checks it is `digest`).
pub(super) fn pull_into(
    holder: &str,
    tls: Option<&Tls>,
    token: Option<&[u8]>,
    digest: &[u8; 32],
    release: bool,
    filling: &mut Filling,
) -> Result<[u8; 32], String> {
    let failed = |e: std::io::Error| format!("pulling from {holder}: {e}");
    let addr = holder
        .to_socket_addrs()
        .map_err(failed)?
        .next()
        .ok_or_else(|| format!("pulling from {holder}: the address names no host"))?;
    let tcp = StdStream::connect_timeout(&addr, CONNECT_FOR).map_err(failed)?;
    tcp.set_nodelay(true).map_err(failed)?;
    tcp.set_read_timeout(Some(STALL)).map_err(failed)?;
    tcp.set_write_timeout(Some(STALL)).map_err(failed)?;
    let mut s: Box<dyn ReadWrite> = match tls {
        Some(tls) => Box::new(tls.pull_client(tcp).map_err(failed)?),
        None => Box::new(tcp),
    };
    let token = token.unwrap_or_default();
    let mut request = Vec::with_capacity(MAGIC.len() + 2 + token.len() + 33);
    request.extend_from_slice(MAGIC);
    request.extend_from_slice(&(token.len() as u16).to_le_bytes());
    request.extend_from_slice(token);
    request.extend_from_slice(digest);
    request.push(u8::from(release));
    s.write_all(&request).map_err(failed)?;
    let mut status = [0u8; 1];
    s.read_exact(&mut status).map_err(failed)?;
    if status[0] != 0 {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).map_err(failed)?;
        let mut why = vec![0u8; (u32::from_le_bytes(len) as usize).min(64 << 10)];
        s.read_exact(&mut why).map_err(failed)?;
        return Err(format!(
            "pulling from {holder}: {}",
            String::from_utf8_lossy(&why)
        ));
    }
    let mut len = [0u8; 8];
    s.read_exact(&mut len).map_err(failed)?;
    let len = u64::from_le_bytes(len);
    if len != filling.len() as u64 {
        return Err(format!(
            "{holder} has {len} bytes under that digest, not {}",
            filling.len()
        ));
    }
    filling
        .fill_with(|room| read_digesting(&mut s, room))
        .map_err(failed)
}

/// A pull's connection: plain, or TLS.
trait ReadWrite: Read + Write {}

impl<T: Read + Write> ReadWrite for T {}

/// How much of a pull is read before it is handed to the digest.
const PIECE: usize = 4 << 20;

/// Fills `room` from `from`, digesting each piece on a thread of its own
/// while the next arrives; the digest of it all.
fn read_digesting(from: &mut impl Read, room: &mut [u8]) -> std::io::Result<[u8; 32]> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<&[u8]>(4);
    std::thread::scope(|scope| {
        let digest = scope.spawn(move || {
            let mut hasher = blake3::Hasher::new();
            for piece in rx {
                hasher.update(piece);
            }
            *hasher.finalize().as_bytes()
        });
        for piece in room.chunks_mut(PIECE) {
            from.read_exact(piece)?;
            let piece: &[u8] = piece;
            if tx.send(piece).is_err() {
                break;
            }
        }
        drop(tx);
        Ok(digest.join().expect("digesting does not panic"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::blob::StoreStats;
    use futures_util::StreamExt;

    /// Lends one blob, to those that bring `token`.
    struct OneBlob(Arc<Blob>, &'static [u8]);

    impl Lender for OneBlob {
        fn token_ok(&self, got: Option<&[u8]>) -> bool {
            got == Some(self.1)
        }

        fn lent(&self, digest: &[u8; 32], _release: bool) -> Option<Arc<Blob>> {
            (self.0.digest().0 == *digest).then(|| self.0.clone())
        }
    }

    #[test]
    fn a_pull_brings_the_bytes_and_other_connections_go_to_the_server() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let stats = Arc::new(StoreStats::default());
        // Three pieces, the last short.
        let data: Vec<u8> = (0..(9 << 20) + 5).map(|i: u32| (i % 253) as u8).collect();
        let blob = Arc::new(Blob::copy_from(&data, vec![], &stats));
        let digest = blob.digest().0;
        let lender: Arc<dyn Lender> = Arc::new(OneBlob(blob, b"secret"));
        let (addr, mut others) = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            (addr, Box::pin(incoming(listener, lender, None)))
        });
        let pull = |token: &[u8], digest: [u8; 32], len: usize| {
            let mut filling = Filling::new(len, None, &stats);
            pull_into(&addr, None, Some(token), &digest, false, &mut filling)
                .map(|d| (d, filling.finish(vec![]).expect("filled")))
        };
        let (digested, got) = pull(b"secret", digest, data.len()).expect("a pull");
        assert_eq!(digested, digest, "digested as it came");
        assert_eq!(got.digest().0, digest);
        assert_eq!(&*got.loaded().unwrap(), &data[..]);
        let err = pull(b"wrong", digest, data.len()).unwrap_err();
        assert!(err.contains("cluster token"), "{err}");
        let err = pull(b"secret", [7; 32], data.len()).unwrap_err();
        assert!(err.contains("no such object"), "{err}");
        let err = pull(b"secret", digest, 10).unwrap_err();
        assert!(err.contains("not 10"), "{err}");
        // Anything else (an HTTP/2 preface) reaches the gRPC server,
        // unread.
        let mut other = StdStream::connect(&addr).unwrap();
        other.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
        let Conn::Plain(passed) = rt.block_on(others.next()).unwrap().unwrap() else {
            panic!("a plain connection")
        };
        let mut first = [0u8; 16];
        rt.block_on(peek_exact(&passed, &mut first)).unwrap();
        assert_eq!(&first, b"PRI * HTTP/2.0\r\n");
    }
}
