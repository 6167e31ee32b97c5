//! Which addresses a plugin may reach when its tenant does not allow private networks:
//! public unicast only. The blocks are the IANA IPv4 and IPv6 Special-Purpose Address
//! Registries (RFC 6890 and its updates) plus multicast; for IPv6, anything outside
//! global unicast (2000::/3) too. Addresses that embed an IPv4 address (IPv4-mapped,
//! NAT64's well-known prefix, 6to4) are judged by the IPv4 address they lead to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

/// IPv4 blocks no plugin of a public-only tenant reaches. Some (AS112, AMT) are
/// globally reachable by IANA's table, but no business flow calls them, and AS112
/// answers for private reverse zones.
const SPECIAL_V4: &[Ipv4Net] = &[
    v4(0, 0, 0, 0, 8),       // "this network"
    v4(10, 0, 0, 0, 8),      // private (RFC 1918)
    v4(100, 64, 0, 0, 10),   // shared address space (carrier-grade NAT)
    v4(127, 0, 0, 0, 8),     // loopback
    v4(169, 254, 0, 0, 16),  // link-local: cloud metadata lives at 169.254.169.254
    v4(172, 16, 0, 0, 12),   // private
    v4(192, 0, 0, 0, 24),    // IETF protocol assignments (DS-Lite, NAT64 discovery, ...)
    v4(192, 0, 2, 0, 24),    // documentation (TEST-NET-1)
    v4(192, 31, 196, 0, 24), // AS112-v4
    v4(192, 52, 193, 0, 24), // AMT
    v4(192, 88, 99, 0, 24),  // deprecated 6to4 relay anycast
    v4(192, 168, 0, 0, 16),  // private
    v4(192, 175, 48, 0, 24), // AS112 direct delegation
    v4(198, 18, 0, 0, 15),   // benchmarking
    v4(198, 51, 100, 0, 24), // documentation (TEST-NET-2)
    v4(203, 0, 113, 0, 24),  // documentation (TEST-NET-3)
    v4(224, 0, 0, 0, 4),     // multicast
    v4(240, 0, 0, 0, 4),     // reserved, with 255.255.255.255 (limited broadcast)
];

/// Where every public IPv6 unicast address is.
const GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// IPv6 blocks inside 2000::/3 that are not public destinations.
const SPECIAL_V6: &[Ipv6Net] = &[
    // IETF protocol assignments: Teredo (2001::/32), PCP and TURN anycast,
    // benchmarking (2001:2::/48), AMT, AS112-v6, ORCHID, drone remote ID.
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48), // AS112 direct delegation
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),     // documentation (RFC 9637)
];

/// Whether a plugin of a tenant without `allow_private` may not reach `ip`.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => v4_forbidden(ip),
        IpAddr::V6(ip) => v6_forbidden(ip),
    }
}

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    SPECIAL_V4.iter().any(|net| net.contains(&ip))
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    if let Some(embedded) = embedded_v4(ip) {
        return v4_forbidden(embedded);
    }
    // Outside 2000::/3 is loopback, unspecified, IPv4-compatible (::/96), discard-only
    // (100::/64), local-use NAT64 (64:ff9b:1::/48), SRv6 segment identifiers
    // (5f00::/16), unique-local (fc00::/7), link-local (fe80::/10), site-local,
    // multicast (ff00::/8), or not allocated.
    !GLOBAL_UNICAST.contains(&ip) || SPECIAL_V6.iter().any(|net| net.contains(&ip))
}

/// The IPv4 address a packet to `ip` ends up at: IPv4-mapped (::ffff:0:0/96), NAT64's
/// well-known prefix (64:ff9b::/96, where DNS64 puts public IPv4 sites on IPv6-only
/// networks) and 6to4 (2002::/16, the IPv4 address in bits 16-47).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(last(hi, lo)),
        [0x2002, hi, lo, ..] => Some(last(hi, lo)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every special-purpose block with an address inside it (forbidden) and, where the
    /// neighbour is public, one just outside it (allowed).
    const TABLE: &[(&str, bool)] = &[
        // 0.0.0.0/8
        ("0.0.0.0", true),
        ("0.255.255.255", true),
        ("1.0.0.0", false),
        // 10.0.0.0/8
        ("10.0.0.1", true),
        ("10.255.255.255", true),
        ("9.255.255.255", false),
        ("11.0.0.0", false),
        // 100.64.0.0/10
        ("100.64.0.0", true),
        ("100.127.255.255", true),
        ("100.63.255.255", false),
        ("100.128.0.0", false),
        // 127.0.0.0/8
        ("127.0.0.1", true),
        ("127.255.255.254", true),
        ("126.255.255.255", false),
        ("128.0.0.0", false),
        // 169.254.0.0/16
        ("169.254.169.254", true),
        ("169.253.255.255", false),
        ("169.255.0.0", false),
        // 172.16.0.0/12
        ("172.16.0.0", true),
        ("172.31.255.255", true),
        ("172.15.255.255", false),
        ("172.32.0.0", false),
        // 192.0.0.0/24
        ("192.0.0.0", true),
        ("192.0.0.9", true),
        ("192.0.0.170", true),
        ("191.255.255.255", false),
        ("192.0.1.0", false),
        // 192.0.2.0/24
        ("192.0.2.1", true),
        ("192.0.3.0", false),
        // 192.31.196.0/24
        ("192.31.196.1", true),
        ("192.31.195.255", false),
        ("192.31.197.0", false),
        // 192.52.193.0/24
        ("192.52.193.1", true),
        ("192.52.192.255", false),
        ("192.52.194.0", false),
        // 192.88.99.0/24
        ("192.88.99.1", true),
        ("192.88.98.255", false),
        ("192.88.100.0", false),
        // 192.168.0.0/16
        ("192.168.1.1", true),
        ("192.167.255.255", false),
        ("192.169.0.0", false),
        // 192.175.48.0/24
        ("192.175.48.1", true),
        ("192.175.47.255", false),
        ("192.175.49.0", false),
        // 198.18.0.0/15
        ("198.18.0.0", true),
        ("198.19.255.255", true),
        ("198.17.255.255", false),
        ("198.20.0.0", false),
        // 198.51.100.0/24
        ("198.51.100.1", true),
        ("198.51.99.255", false),
        ("198.51.101.0", false),
        // 203.0.113.0/24
        ("203.0.113.1", true),
        ("203.0.112.255", false),
        ("203.0.114.0", false),
        // 224.0.0.0/4 and 240.0.0.0/4, 255.255.255.255
        ("224.0.0.1", true),
        ("239.255.255.255", true),
        ("223.255.255.255", false),
        ("240.0.0.1", true),
        ("255.255.255.255", true),
        // Public
        ("8.8.8.8", false),
        ("1.1.1.1", false),
        ("151.101.1.69", false),
        // ::/128, ::1/128, IPv4-compatible ::/96
        ("::", true),
        ("::1", true),
        ("::808:808", true),
        // ::ffff:0:0/96: by the IPv4 address
        ("::ffff:127.0.0.1", true),
        ("::ffff:10.0.0.1", true),
        ("::ffff:169.254.169.254", true),
        ("::ffff:8.8.8.8", false),
        // 64:ff9b::/96: by the IPv4 address; 64:ff9b:1::/48 is local use
        ("64:ff9b::7f00:1", true),
        ("64:ff9b::a9fe:a9fe", true),
        ("64:ff9b::808:808", false),
        ("64:ff9b:1::808:808", true),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", true),
        // 100::/64
        ("100::1", true),
        ("100::ffff:ffff:ffff:ffff", true),
        // 2001::/23 and its sub-blocks
        ("2001::1", true),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", true), // Teredo
        ("2001:1::1", true),
        ("2001:1::2", true),
        ("2001:2::1", true),
        ("2001:3::1", true),
        ("2001:4:112::1", true),
        ("2001:10::1", true),
        ("2001:20::1", true),
        ("2001:30::1", true),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("2001:200::1", false),
        ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        // 2001:db8::/32
        ("2001:db8::1", true),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("2001:db9::", false),
        // 2002::/16: by the IPv4 address in bits 16-47
        ("2002:7f00:1::", true),
        ("2002:c0a8:101::1", true),
        ("2002:0808:0808::1", false),
        ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ("2003::1", false),
        // 2620:4f:8000::/48
        ("2620:4f:8000::1", true),
        ("2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", false),
        ("2620:4f:8001::", false),
        // 3fff::/20
        ("3fff::1", true),
        ("3fff:fff::", true),
        ("3fff:1000::", false),
        ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        // 5f00::/16 (outside 2000::/3, as its neighbours are)
        ("5f00::1", true),
        // fc00::/7
        ("fc00::1", true),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        // fe80::/10, fec0::/10 (deprecated site-local)
        ("fe80::1", true),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        ("fec0::1", true),
        // ff00::/8
        ("ff02::1", true),
        ("ff0e::1", true),
        // 2000::/3 ends at 3fff:...; past it nothing is allocated for unicast
        ("4000::1", true),
        ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
        // Public
        ("2606:4700:4700::1111", false),
        ("2a00:1450:4001:80b::200e", false),
        ("2001:4860:4860::8888", false),
    ];

    #[test]
    fn special_purpose_blocks_are_forbidden_and_their_neighbours_are_not() {
        let wrong: Vec<String> = TABLE
            .iter()
            .filter_map(|(text, forbidden)| {
                let ip: IpAddr = text.parse().expect("a valid address in the table");
                (is_forbidden(ip) != *forbidden)
                    .then(|| format!("{text}: expected forbidden = {forbidden}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
