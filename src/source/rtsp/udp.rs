//! RTP and RTCP over UDP, relayed by the camera link so that they are bounded like
//! interleaved data. For each SETUP the link binds two port pairs: one facing the camera (its
//! ports replace retina's `client_port` in the request) and one on loopback facing retina (its
//! ports become the `server_port`, with `source=127.0.0.1`, in the answer). Datagrams from the
//! camera's address go on to retina once counted against the stream's bounds; retina's own
//! (firewall hole punches, RTCP) go on to the camera from the ports it was told. Anything from
//! another address is dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::UdpSocket;

use super::rtp_bounds::{BoundError, StreamBound};

/// Tries at binding an even port with its odd neighbour free.
const PAIR_ATTEMPTS: usize = 64;
/// Largest datagram read (the largest UDP payload).
const DATAGRAM: usize = 65_535;

/// Two sockets on consecutive ports, RTP on the even one (RFC 3550 §11).
#[derive(Debug)]
pub struct PortPair {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    /// The RTP port, known at bind; RTCP is the next.
    port: u16,
}

impl PortPair {
    pub fn bind(ip: IpAddr) -> std::io::Result<PortPair> {
        let mut last = None;
        for _ in 0..PAIR_ATTEMPTS {
            let rtp = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
            let port = rtp.local_addr()?.port();
            if port % 2 != 0 || port == u16::MAX {
                continue;
            }
            match std::net::UdpSocket::bind(SocketAddr::new(ip, port + 1)) {
                Ok(rtcp) => {
                    rtp.set_nonblocking(true)?;
                    rtcp.set_nonblocking(true)?;
                    return Ok(PortPair {
                        rtp: UdpSocket::from_std(rtp)?,
                        rtcp: UdpSocket::from_std(rtcp)?,
                        port,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("no even port with a free neighbour in {PAIR_ATTEMPTS} tries"),
            )
        }))
    }

    /// The RTP port; RTCP is the next.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// One stream's relay, bound when its SETUP goes out, run once the camera has answered.
#[derive(Debug)]
pub struct UdpLeg {
    camera_side: PortPair,
    retina_side: PortPair,
    /// retina's RTP port (RTCP is the next), on loopback.
    retina_port: u16,
}

/// Where the camera sends from and is sent to, from its SETUP answer.
#[derive(Debug, Clone, Copy)]
pub struct CameraPorts {
    pub ip: IpAddr,
    pub rtp_port: u16,
}

/// Why a relay stopped.
#[derive(Debug)]
pub enum LegEnd {
    Bound(BoundError),
    Io(std::io::Error),
}

impl UdpLeg {
    /// Binds the camera-facing pair on `camera_facing` (the address the link reaches the
    /// camera from) and the retina-facing pair on loopback.
    pub fn bind(camera_facing: IpAddr, retina_port: u16) -> std::io::Result<UdpLeg> {
        Ok(UdpLeg {
            camera_side: PortPair::bind(camera_facing)?,
            retina_side: PortPair::bind(IpAddr::V4(Ipv4Addr::LOCALHOST))?,
            retina_port,
        })
    }

    /// The port pair the camera is to send to (`client_port` in the request).
    pub fn camera_facing_port(&self) -> u16 {
        self.camera_side.port()
    }

    /// The port pair retina is told the camera sends from (`server_port` in the answer).
    pub fn retina_facing_port(&self) -> u16 {
        self.retina_side.port()
    }

    pub fn retina_port(&self) -> u16 {
        self.retina_port
    }

    /// Relays until a bound is passed or a socket fails; dropped (aborted) when the link ends.
    pub async fn run(self, camera: CameraPorts, mut bound: StreamBound) -> LegEnd {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let retina_rtp = SocketAddr::new(loopback, self.retina_port);
        let retina_rtcp = SocketAddr::new(loopback, self.retina_port.wrapping_add(1));
        let camera_rtp = SocketAddr::new(camera.ip, camera.rtp_port);
        let camera_rtcp = SocketAddr::new(camera.ip, camera.rtp_port.wrapping_add(1));
        let (cam, ret) = (&self.camera_side, &self.retina_side);
        let hops = [
            Hop::new(&cam.rtp, Peer::Host(camera.ip), &ret.rtp, retina_rtp, true),
            Hop::new(
                &cam.rtcp,
                Peer::Host(camera.ip),
                &ret.rtcp,
                retina_rtcp,
                false,
            ),
            Hop::new(
                &ret.rtp,
                Peer::Exact(retina_rtp),
                &cam.rtp,
                camera_rtp,
                false,
            ),
            Hop::new(
                &ret.rtcp,
                Peer::Exact(retina_rtcp),
                &cam.rtcp,
                camera_rtcp,
                false,
            ),
        ];
        // One buffer: one datagram is in hand at a time.
        let mut buf = vec![0u8; DATAGRAM];
        let mut first = 0;
        let mut foreign = 0u64;
        loop {
            let (i, received) = next_datagram(&hops, first, &mut buf).await;
            // The next wait starts after this socket, so a flood on one cannot starve the
            // others.
            first = (i + 1) % hops.len();
            let hop = &hops[i];
            let (n, from) = match received {
                Ok(r) => r,
                // A port closed at the other end answers with ICMP, which a later receive
                // reports; the stream's own timeouts judge whether anything still arrives.
                Err(e) if is_transient(&e) => continue,
                Err(e) => return LegEnd::Io(e),
            };
            if !hop.accepts(from) {
                foreign += 1;
                if foreign == 1 {
                    tracing::debug!("UDP datagrams from neither the camera nor retina: dropped");
                }
                continue;
            }
            let datagram = &buf[..n];
            if hop.bounded
                && let Err(e) = bound.add(datagram)
            {
                return LegEnd::Bound(e);
            }
            match hop.out.send_to(datagram, hop.to).await {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(e) => return LegEnd::Io(e),
            }
        }
    }
}

/// Whom a socket takes datagrams from.
#[derive(Debug, Clone, Copy)]
enum Peer {
    /// Any port of the camera's address (it may send from ports it did not announce).
    Host(IpAddr),
    /// retina's own socket, exactly.
    Exact(SocketAddr),
}

/// One direction of the relay: what arrives on `from` (from `peer`) leaves by `out` to `to`.
struct Hop<'a> {
    from: &'a UdpSocket,
    peer: Peer,
    out: &'a UdpSocket,
    to: SocketAddr,
    /// Counted against the stream's bounds (the camera's RTP).
    bounded: bool,
}

impl<'a> Hop<'a> {
    fn new(
        from: &'a UdpSocket,
        peer: Peer,
        out: &'a UdpSocket,
        to: SocketAddr,
        bounded: bool,
    ) -> Self {
        Hop {
            from,
            peer,
            out,
            to,
            bounded,
        }
    }

    fn accepts(&self, sender: SocketAddr) -> bool {
        match self.peer {
            Peer::Host(ip) => sender.ip() == ip,
            Peer::Exact(addr) => sender == addr,
        }
    }
}

/// Waits for a datagram on any hop's socket, trying them from `first` on; returns which hop
/// it came in on, with its length and sender.
async fn next_datagram(
    hops: &[Hop<'_>],
    first: usize,
    buf: &mut [u8],
) -> (usize, std::io::Result<(usize, SocketAddr)>) {
    std::future::poll_fn(|cx| {
        for k in 0..hops.len() {
            let i = (first + k) % hops.len();
            let mut read = tokio::io::ReadBuf::new(buf);
            if let std::task::Poll::Ready(r) = hops[i].from.poll_recv_from(cx, &mut read) {
                let n = read.filled().len();
                return std::task::Poll::Ready((i, r.map(|from| (n, from))));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | HostUnreachable | NetworkUnreachable | WouldBlock
    ) || e.raw_os_error() == Some(libc::ENOBUFS)
}

/// The `server_port` (its first port) and `source` of a SETUP answer's Transport header.
pub fn answered_ports(transport: &str) -> (Option<u16>, Option<IpAddr>) {
    let mut port = None;
    let mut source = None;
    for part in transport.split(';').map(str::trim) {
        if let Some(range) = part.strip_prefix("server_port=") {
            port = range.split('-').next().and_then(|p| p.trim().parse().ok());
        } else if let Some(ip) = part.strip_prefix("source=") {
            source = ip.trim().parse().ok();
        }
    }
    (port, source)
}

/// `transport` with `name=first-(first+1)` in place of its `name=` parameter (added if absent),
/// and every parameter in `drop` left out.
pub fn with_ports(transport: &str, name: &str, first: u16, drop: &[&str]) -> String {
    let value = format!("{name}={first}-{}", first.wrapping_add(1));
    let mut placed = false;
    let mut parts: Vec<String> = Vec::new();
    for part in transport.split(';') {
        let key = part.trim().split('=').next().unwrap_or_default();
        if key.eq_ignore_ascii_case(name) {
            if !placed {
                parts.push(value.clone());
                placed = true;
            }
        } else if !drop.iter().any(|d| key.eq_ignore_ascii_case(d)) {
            parts.push(part.to_owned());
        }
    }
    if !placed {
        parts.push(value);
    }
    parts.join(";")
}

/// retina's RTP port from a SETUP request's Transport header, if it asks for unicast UDP.
pub fn requested_client_port(transport: &str) -> Option<u16> {
    let mut parts = transport.split(';').map(str::trim);
    let profile = parts.next()?;
    if profile.contains("/TCP") {
        return None;
    }
    parts
        .find_map(|p| p.strip_prefix("client_port="))
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_headers_are_read_and_rewritten() {
        let request = "RTP/AVP/UDP;unicast;client_port=40000-40001";
        assert_eq!(requested_client_port(request), Some(40000));
        assert_eq!(
            requested_client_port("RTP/AVP/TCP;unicast;interleaved=0-1"),
            None
        );
        assert_eq!(
            with_ports(request, "client_port", 50000, &[]),
            "RTP/AVP/UDP;unicast;client_port=50000-50001"
        );
        let answer = "RTP/AVP;unicast;client_port=50000-50001;server_port=6970-6971;\
                      source=10.0.0.5;ssrc=1234ABCD";
        assert_eq!(
            answered_ports(answer),
            (Some(6970), Some(IpAddr::from([10, 0, 0, 5])))
        );
        let shown = with_ports(answer, "server_port", 41000, &["source"]);
        let shown = with_ports(&shown, "client_port", 40000, &[]);
        assert_eq!(
            format!("{shown};source=127.0.0.1"),
            "RTP/AVP;unicast;client_port=40000-40001;server_port=41000-41001;ssrc=1234ABCD;\
             source=127.0.0.1"
        );
        assert_eq!(
            answered_ports("RTP/AVP;unicast;client_port=1-2"),
            (None, None)
        );
    }

    /// Datagrams pass both ways between a camera's and retina's sockets; a stranger's and a
    /// frame past the bound do not.
    #[tokio::test]
    async fn datagrams_are_relayed_and_bounded() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let camera = PortPair::bind(lo).unwrap();
        let retina = PortPair::bind(lo).unwrap();
        let stranger = std::net::UdpSocket::bind((lo, 0)).unwrap();
        let leg = UdpLeg::bind(lo, retina.port()).unwrap();
        let to_camera_side = SocketAddr::new(lo, leg.camera_facing_port());
        let to_retina_side = SocketAddr::new(lo, leg.retina_facing_port());
        let relay = tokio::spawn(leg.run(
            CameraPorts {
                ip: lo,
                rtp_port: camera.port(),
            },
            StreamBound::default(),
        ));
        let mut buf = [0u8; 2048];
        let packet = |ts: u8| {
            let mut p = vec![0x80, 0x60, 0, 1, 0, 0, 0, ts, 0, 0, 0, 0];
            p.resize(1000, 7);
            p
        };
        // retina's hole punch reaches the camera's RTP port from the camera-facing pair.
        retina.rtp.send_to(b"punch", to_retina_side).await.unwrap();
        let (n, from) = camera.rtp.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            (&buf[..n], from.port()),
            (&b"punch"[..], to_camera_side.port())
        );
        // The camera's RTP and RTCP reach retina's pair from the retina-facing pair.
        camera
            .rtp
            .send_to(&packet(1), to_camera_side)
            .await
            .unwrap();
        let (n, from) = retina.rtp.recv_from(&mut buf).await.unwrap();
        assert_eq!((n, from), (1000, to_retina_side));
        let rtcp_side = SocketAddr::new(lo, to_camera_side.port() + 1);
        camera.rtcp.send_to(b"report", rtcp_side).await.unwrap();
        let (n, _) = retina.rtcp.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"report");
        // A stranger on another port of the same host is not retina: nothing reaches the
        // camera from it.
        stranger.send_to(b"forged", to_retina_side).unwrap();
        camera
            .rtp
            .send_to(&packet(2), to_camera_side)
            .await
            .unwrap();
        let (n, _) = retina.rtp.recv_from(&mut buf).await.unwrap();
        assert_eq!(n, 1000);
        let mut probe = [0u8; 16];
        assert!(camera.rtp.try_recv_from(&mut probe).is_err());
        // Nor does another address's datagram, sent to the camera-facing port, reach retina
        // (loopback takes all of 127/8, so 127.0.0.2 is another host here).
        let elsewhere = std::net::UdpSocket::bind(("127.0.0.2", 0)).unwrap();
        elsewhere.send_to(&packet(9), to_camera_side).unwrap();
        camera
            .rtp
            .send_to(&packet(4), to_camera_side)
            .await
            .unwrap();
        let (n, _) = retina.rtp.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            (n, buf[7]),
            (1000, 4),
            "the stranger's packet 9 was dropped"
        );
        // One timestamp's packets past the frame bound end the relay.
        let mut big = packet(3);
        big.resize(60_000, 0);
        let end = async {
            loop {
                let _ = camera.rtp.send_to(&big, to_camera_side).await;
                let _ = retina.rtp.try_recv_from(&mut buf);
                tokio::task::yield_now().await;
            }
        };
        let ended = tokio::select! {
            r = relay => r.unwrap(),
            _ = end => unreachable!(),
        };
        assert!(
            matches!(ended, LegEnd::Bound(BoundError::Frame { .. })),
            "{ended:?}"
        );
    }
}
