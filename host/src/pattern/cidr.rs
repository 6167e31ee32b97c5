//! The `cidr` operator (EventBridge and SNS): an IPv4 or IPv6 block, `10.0.0.0/24` or
//! `2001:db8::/32`; a string value matches when it is an address of the same family
//! inside the block.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq)]
pub enum Cidr {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, bits) = text
            .split_once('/')
            .ok_or_else(|| format!("Malformed CIDR, one '/' required: {text}"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("Nonsensical CIDR IP address: {text}"))?;
        let bits: u32 = bits
            .parse()
            .map_err(|_| format!("Malformed CIDR, mask bits must be an integer: {text}"))?;
        match addr {
            IpAddr::V4(a) if bits <= 32 => {
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                Ok(Cidr::V4 {
                    net: u32::from(a) & mask,
                    mask,
                })
            }
            IpAddr::V6(a) if bits <= 128 => {
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                Ok(Cidr::V6 {
                    net: u128::from(a) & mask,
                    mask,
                })
            }
            _ => Err(format!("Malformed CIDR, mask bits out of range: {text}")),
        }
    }

    pub fn contains(&self, text: &str) -> bool {
        match (self, text.parse::<IpAddr>()) {
            (Cidr::V4 { net, mask }, Ok(IpAddr::V4(a))) => u32::from(a) & mask == *net,
            (Cidr::V6 { net, mask }, Ok(IpAddr::V6(a))) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}
