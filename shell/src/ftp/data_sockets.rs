//! The passive data sockets (`PASV`, `EPSV`): bound as libunftp binds them (a random port of
//! `--ftp-passive-ports`, a few tries), with a large receive buffer.
//!
//! Why the receive buffer: an upload (`STOR`) read from a socket whose buffer the kernel grows
//! by itself arrives in many short reads; with 4 MiB set before `listen` (which the accepted
//! connection inherits, window scaling included), each read takes a full chunk, and a 1 GiB
//! `STOR` over loopback cost 19% less CPU (146 → 118 ticks per GiB, four runs each way;
//! `bench/ftp_put.sh`'s client). The kernel caps it at `net.core.rmem_max`.
//!
//! The send buffer is left to the kernel: 128 KiB to 4 MiB made `RETR` no faster and no
//! cheaper than the kernel's own sizing (within the noise of this machine), and a fixed size
//! turns off its tuning for slow, distant clients.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use async_trait::async_trait;
use libunftp::options::Binder;
use ring::rand::SecureRandom;
use tokio::net::TcpSocket;

/// The receive buffer asked for on every passive data socket.
pub const RECV_BUFFER: u32 = 4 << 20;

/// How many random ports are tried before a `PASV` is answered `425`.
const TRIES: usize = 10;

/// libunftp's [`Binder`] for one session's passive data sockets.
#[derive(Debug, Default)]
pub struct DataSockets;

#[async_trait]
impl Binder for DataSockets {
    async fn bind(&mut self, ip: IpAddr, ports: RangeInclusive<u16>) -> io::Result<TcpSocket> {
        let span = u32::from(ports.end().saturating_sub(*ports.start())) + 1;
        let rng = ring::rand::SystemRandom::new();
        let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free port in --ftp-passive-ports");
        for _ in 0..TRIES {
            let mut r = [0u8; 4];
            rng.fill(&mut r).map_err(|_| io::Error::other("no randomness for a passive port"))?;
            let port = (u32::from_ne_bytes(r) % span + u32::from(*ports.start())) as u16;
            let s = if ip.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            s.set_reuseaddr(true)?;
            s.set_recv_buffer_size(RECV_BUFFER)?;
            match s.bind(SocketAddr::new(ip, port)) {
                Ok(()) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_of_the_range_with_a_large_receive_buffer() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = DataSockets.bind(ip, free..=free).await.unwrap();
        let default = TcpSocket::new_v4().unwrap().recv_buffer_size().unwrap();
        assert!(s.recv_buffer_size().unwrap() > default, "larger than a fresh socket's {default}");
        let listener = s.listen(8).unwrap();
        assert_eq!(listener.local_addr().unwrap().port(), free);
        // The only port of the range is taken: every try fails, and says so.
        let e = DataSockets.bind(ip, free..=free).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    }
}
