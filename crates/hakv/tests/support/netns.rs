//! A network of its own for a test: each member in a network namespace, joined by a bridge on
//! a private /24 that the test (in the root namespace) reaches directly, and nftables rules
//! that cut links between members, one way or both. Root only; `Net::create` returns `None`
//! elsewhere so the caller can skip with a message. Everything is removed when dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A bridge and `n` namespaces `1..=n`, member `i` at `10.99.K.i`.
pub struct Net {
    /// Distinguishes this net's names and subnet from other tests running at the same time.
    tag: u32,
    members: u32,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn must(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run ip/nft");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// Creates the bridge and namespaces, or `None` if this process may not (not root, or no
    /// `ip`/`nft`).
    pub fn create(members: u32) -> Option<Net> {
        if !run(&["ip", "netns", "list"]) || !run(&["nft", "--version"]) || !super::tmpfs::is_root() {
            return None;
        }
        // A subnet per test: the process id and a counter, within 10.99.1-250.
        let tag = (std::process::id() * 7 + NEXT.fetch_add(1, Ordering::Relaxed)) % 250 + 1;
        let net = Net { tag, members };
        net.remove(); // leftovers of a crashed run with the same tag
        let bridge = net.bridge();
        must(&["ip", "link", "add", &bridge, "type", "bridge"]);
        must(&[
            "ip",
            "addr",
            "add",
            &format!("10.99.{tag}.254/24"),
            "dev",
            &bridge,
        ]);
        must(&["ip", "link", "set", &bridge, "up"]);
        for i in 1..=members {
            let (ns, host, inner) = (net.ns(i), format!("hk{tag}h{i}"), format!("hk{tag}m{i}"));
            must(&["ip", "netns", "add", &ns]);
            must(&["ip", "link", "add", &host, "type", "veth", "peer", "name", &inner]);
            must(&["ip", "link", "set", &inner, "netns", &ns]);
            must(&["ip", "link", "set", &host, "master", &bridge]);
            must(&["ip", "link", "set", &host, "up"]);
            let addr = format!("10.99.{tag}.{i}/24");
            must(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inner,
            ]);
            must(&["ip", "netns", "exec", &ns, "ip", "link", "set", &inner, "up"]);
            must(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
            must(&["ip", "netns", "exec", &ns, "nft", "add", "table", "inet", "hakv"]);
            must(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "nft",
                "add",
                "chain",
                "inet",
                "hakv",
                "out",
                "{ type filter hook output priority 0; }",
            ]);
        }
        Some(net)
    }

    /// Member `i`'s namespace.
    pub fn ns(&self, i: u32) -> String {
        format!("hakv-{}-{i}", self.tag)
    }

    fn bridge(&self) -> String {
        format!("hkbr{}", self.tag)
    }

    pub fn ip(&self, i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 99, self.tag as u8, i as u8))
    }

    pub fn addr(&self, i: u32, port: u16) -> SocketAddr {
        SocketAddr::new(self.ip(i), port)
    }

    /// Drops every packet member `from` sends to member `to` (one way).
    pub fn cut(&self, from: u32, to: u32) {
        let rule = format!("ip daddr {} drop", self.ip(to));
        let ns = self.ns(from);
        let mut args = vec![
            "ip", "netns", "exec", &ns, "nft", "add", "rule", "inet", "hakv", "out",
        ];
        args.extend(rule.split(' '));
        must(&args);
    }

    /// Cuts `member` off from every other member, both ways.
    pub fn isolate(&self, member: u32) {
        for other in (1..=self.members).filter(|o| *o != member) {
            self.cut(member, other);
            self.cut(other, member);
        }
    }

    /// Removes every cut.
    pub fn heal(&self) {
        for i in 1..=self.members {
            must(&[
                "ip",
                "netns",
                "exec",
                &self.ns(i),
                "nft",
                "flush",
                "chain",
                "inet",
                "hakv",
                "out",
            ]);
        }
    }

    fn remove(&self) {
        for i in 1..=self.members {
            run(&["ip", "netns", "del", &self.ns(i)]);
        }
        run(&["ip", "link", "del", &self.bridge()]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove();
    }
}
