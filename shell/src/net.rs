//! The network behind a small trait, so the same daemon code runs on real sockets (tokio) or in
//! the turmoil simulator.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream: a TCP connection, real or simulated. `Any`, so that a real socket can be
/// recognised and sent files with `sendfile` ([`crate::sendfile`]).
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send + std::any::Any {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

pub type BoxConn = Pin<Box<dyn Conn>>;

/// A bound TCP listener.
pub trait Listener: Send + 'static {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxConn, SocketAddr)>>;
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// The same listening socket for another runtime to accept on (see
    /// `server::serve_on_threads`); `None` where there is no kernel socket (the simulator).
    fn share(&self) -> Option<SharedListener> {
        None
    }
}

/// A listening kernel socket that a runtime other than the one that bound it can accept on.
pub struct SharedListener(std::net::TcpListener);

impl SharedListener {
    pub fn try_clone(&self) -> io::Result<SharedListener> {
        self.0.try_clone().map(SharedListener)
    }

    /// Registers the socket with the current runtime.
    pub fn into_listener(self) -> io::Result<Box<dyn Listener>> {
        Ok(Box::new(TokioListener(tokio::net::TcpListener::from_std(self.0)?)))
    }
}

/// A datagram socket joined to the discovery group.
pub trait Datagram: Send + Sync + 'static {
    fn send(&self, packet: Vec<u8>) -> BoxFuture<'_, io::Result<()>>;
    fn recv(&self) -> BoxFuture<'_, io::Result<(Vec<u8>, SocketAddr)>>;
}

/// Opening sockets.
pub trait Net: Send + Sync + 'static {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>>;
    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<BoxConn>>;
    /// Joins the multicast `group` on `interface`, for sending and receiving announcements.
    fn multicast(
        &self,
        group: SocketAddr,
        interface: std::net::Ipv4Addr,
    ) -> BoxFuture<'static, io::Result<Arc<dyn Datagram>>>;
}

/// Real sockets.
pub struct TokioNet;

struct TokioListener(tokio::net::TcpListener);

impl Listener for TokioListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxConn, SocketAddr)>> {
        Box::pin(async move {
            let (s, peer) = self.0.accept().await?;
            s.set_nodelay(true)?;
            Ok((Box::pin(s) as BoxConn, peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn share(&self) -> Option<SharedListener> {
        use std::os::fd::AsFd;
        // A duplicate descriptor of the same socket (non-blocking, as tokio set it).
        let fd = self.0.as_fd().try_clone_to_owned().ok()?;
        Some(SharedListener(std::net::TcpListener::from(fd)))
    }
}

impl Net for TokioNet {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let l = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TokioListener(l)) as Box<dyn Listener>)
        })
    }

    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<BoxConn>> {
        Box::pin(async move {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let s = tokio::net::TcpStream::connect((host, port)).await?;
            s.set_nodelay(true)?;
            Ok(Box::pin(s) as BoxConn)
        })
    }

    fn multicast(
        &self,
        group: SocketAddr,
        interface: std::net::Ipv4Addr,
    ) -> BoxFuture<'static, io::Result<Arc<dyn Datagram>>> {
        Box::pin(async move { Ok(Arc::new(MulticastSocket::open(group, interface)?) as Arc<dyn Datagram>) })
    }
}

/// A UDP socket on the discovery group: bound with SO_REUSEADDR so that several nodes on one
/// host share the group, TTL 1 so announcements stay on the local network.
struct MulticastSocket {
    socket: tokio::net::UdpSocket,
    group: SocketAddr,
}

impl MulticastSocket {
    fn open(group: SocketAddr, interface: std::net::Ipv4Addr) -> io::Result<MulticastSocket> {
        use socket2::{Domain, Protocol, Socket, Type};
        let SocketAddr::V4(g) = group else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "multicast discovery needs an IPv4 group"));
        };
        if !g.ip().is_multicast() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a multicast address", g.ip())));
        }
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.bind(&SocketAddr::from(([0, 0, 0, 0], g.port())).into())?;
        s.join_multicast_v4(g.ip(), &interface)?;
        s.set_multicast_if_v4(&interface)?;
        s.set_multicast_ttl_v4(1)?;
        s.set_multicast_loop_v4(true)?;
        s.set_nonblocking(true)?;
        let socket = tokio::net::UdpSocket::from_std(s.into())?;
        Ok(MulticastSocket { socket, group })
    }
}

impl Datagram for MulticastSocket {
    fn send(&self, packet: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move { self.socket.send_to(&packet, self.group).await.map(|_| ()) })
    }

    fn recv(&self) -> BoxFuture<'_, io::Result<(Vec<u8>, SocketAddr)>> {
        Box::pin(async move {
            let mut buf = vec![0u8; 2048];
            let (n, from) = self.socket.recv_from(&mut buf).await?;
            buf.truncate(n);
            Ok((buf, from))
        })
    }
}

/// Parses a listen address: `:7040` means every interface, `host:7040` resolves `host`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("{s:?}: expected host:port"))?;
    let port: u16 = port.parse().map_err(|_| format!("{s:?}: the port is not a number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?}: the host has no address"))
}
