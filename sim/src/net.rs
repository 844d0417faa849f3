//! The daemon's [`Net`] over turmoil's simulated TCP and UDP.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use dftp::net::{BoxConn, Datagram, Listener, Net};
use futures_util::future::BoxFuture;

/// Sockets of the simulated network, for the host the calling task runs on.
pub struct TurmoilNet;

struct TurmoilListener(turmoil::net::TcpListener);

impl Listener for TurmoilListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxConn, SocketAddr)>> {
        Box::pin(async move {
            let (s, peer) = self.0.accept().await?;
            Ok((Box::pin(s) as BoxConn, peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A UDP socket joined to the discovery group.
struct Group {
    socket: turmoil::net::UdpSocket,
    group: SocketAddr,
}

impl Datagram for Group {
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

impl Net for TurmoilNet {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let l = turmoil::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TurmoilListener(l)) as Box<dyn Listener>)
        })
    }

    fn connect(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<BoxConn>> {
        Box::pin(async move {
            let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let s = turmoil::net::TcpStream::connect((host, port)).await?;
            Ok(Box::pin(s) as BoxConn)
        })
    }

    fn multicast(&self, group: SocketAddr, interface: Ipv4Addr) -> BoxFuture<'static, io::Result<Arc<dyn Datagram>>> {
        Box::pin(async move {
            let SocketAddr::V4(g) = group else {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "multicast discovery needs an IPv4 group"));
            };
            let socket = turmoil::net::UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], g.port()))).await?;
            socket.join_multicast_v4(*g.ip(), interface)?;
            socket.set_multicast_loop_v4(true)?;
            Ok(Arc::new(Group { socket, group }) as Arc<dyn Datagram>)
        })
    }
}
