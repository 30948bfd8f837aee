//! The SSRF guard: webhook URLs may not aim at the server's own networks. Checked when an
//! endpoint is saved and again on every address DNS gives at each delivery (SPEC section 10),
//! unless `RAPPORT_WEBHOOK_ALLOW_PRIVATE=true`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused, or `None` when it is a public unicast address.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// Every block of the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates,
/// globally reachable or not: none is a webhook receiver), multicast and the limited
/// broadcast, plus the cloud metadata addresses that sit in public space.
const SPECIAL_V4: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "this network"),
    ([10, 0, 0, 0], 8, "a private network"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT (shared address space)"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 0, 0], 16, "link-local (cloud metadata lives here)"),
    ([172, 16, 0, 0], 12, "a private network"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments"),
    ([192, 0, 2, 0], 24, "documentation"),
    ([192, 31, 196, 0], 24, "AS112 service"),
    ([192, 52, 193, 0], 24, "automatic multicast tunnelling"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast"),
    ([192, 168, 0, 0], 16, "a private network"),
    ([192, 175, 48, 0], 24, "direct delegation AS112 service"),
    ([198, 18, 0, 0], 15, "benchmarking"),
    ([198, 51, 100, 0], 24, "documentation"),
    ([203, 0, 113, 0], 24, "documentation"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved (and broadcast)"),
    ([168, 63, 129, 16], 32, "the Azure host endpoint (metadata)"),
];

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    SPECIAL_V4.iter().find(|(net, bits, _)| in_v4(ip, *net, *bits)).map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// Every block of the IANA IPv6 Special-Purpose Address Registry that lies in global unicast
/// space (2000::/3); everything outside that space is refused as a whole (loopback,
/// unspecified, IPv4-mapped and -translated, NAT64, discard-only, the dummy prefix, SRv6
/// SIDs at 5f00::/16, unique local, link-local, site-local, multicast and what IANA has not
/// allocated).
const SPECIAL_V6: &[([u16; 8], u32, &str)] = &[
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "IETF protocol assignments (Teredo, benchmarking, ORCHID, AMT, AS112, DETs)"),
    ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32, "documentation"),
    ([0x2620, 0x004f, 0x8000, 0, 0, 0, 0, 0], 48, "direct delegation AS112 service"),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"),
];

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Addresses that carry an IPv4 address name it in the reason, whatever it is.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(refused_v4(v4).unwrap_or("an IPv4-mapped address"));
    }
    if s[0] == 0x2002 {
        // 6to4: 2002:AABB:CCDD::/48 embeds a.b.c.d.
        return Some(refused_v4(embedded_v4(s[1], s[2])).unwrap_or("6to4"));
    }
    if s[0] & 0xe000 != 0x2000 {
        return Some(match () {
            _ if ip.is_unspecified() => "unspecified",
            _ if ip.is_loopback() => "loopback",
            _ if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 => "IPv4-translated",
            _ if s[..6] == [0; 6] => "IPv4-compatible",
            _ if s[0] == 0x64 && s[1] == 0xff9b => "NAT64",
            _ if s[0] == 0x0100 && s[1..4] == [0; 3] => "discard-only",
            _ if s[0] == 0x5f00 => "SRv6 segment identifiers",
            _ if s[0] & 0xfe00 == 0xfc00 => "a unique local (private) network",
            _ if s[0] & 0xffc0 == 0xfe80 => "link-local",
            _ if s[0] & 0xffc0 == 0xfec0 => "site-local",
            _ if s[0] & 0xff00 == 0xff00 => "multicast",
            _ => "outside global unicast space",
        });
    }
    SPECIAL_V6.iter().find(|(net, bits, _)| in_v6(ip, *net, *bits)).map(|(_, _, why)| *why)
}

/// A webhook URL, checked: `https` (or `http` when private targets are allowed), no
/// credentials in it, and a host that is neither a refused address nor `localhost`. Names
/// are resolved and checked again when saved and at each delivery.
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err("webhook URLs must use https".into()),
        other => return Err(format!("webhook URLs must use https, not `{other}`")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a webhook URL may not hold credentials; the signature proves who sends".into());
    }
    if url.fragment().is_some() {
        return Err("a webhook URL may not have a #fragment".into());
    }
    if allow_private {
        return url.host().map(|_| url.clone()).ok_or_else(|| "a webhook URL needs a host".into());
    }
    match url.host() {
        None => Err("a webhook URL needs a host".into()),
        Some(url::Host::Ipv4(ip)) => refuse_ip(IpAddr::V4(ip)).map(|()| url.clone()),
        Some(url::Host::Ipv6(ip)) => refuse_ip(IpAddr::V6(ip)).map(|()| url.clone()),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal") || d.ends_with(".local") {
                Err(format!("`{d}` names this machine or its private network; webhooks go to public addresses"))
            } else {
                Ok(url.clone())
            }
        }
    }
}

fn refuse_ip(ip: IpAddr) -> Result<(), String> {
    match refused(ip) {
        Some(why) => Err(format!("{ip} is {why}; webhooks go to public addresses")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_private_spelling() {
        for url in [
            "https://127.0.0.1/h",
            "https://2130706433/h",
            "https://0x7f000001/h",
            "https://0177.0.0.1/h",
            "https://127.1/h",
            "https://0.0.0.0/h",
            "https://10.1.2.3/h",
            "https://172.16.0.1/h",
            "https://192.168.1.1/h",
            "https://100.64.0.1/h",
            "https://100.100.100.200/h",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/h",
            "https://[::]/h",
            "https://[::ffff:127.0.0.1]/h",
            "https://[::ffff:7f00:1]/h",
            "https://[::ffff:169.254.169.254]/h",
            "https://[::ffff:0:169.254.169.254]/h",
            "https://168.63.129.16/h",
            "https://[::127.0.0.1]/h",
            "https://[64:ff9b::10.0.0.1]/h",
            "https://[2002:a9fe:a9fe::]/h",
            "https://[fd00:ec2::254]/h",
            "https://[fe80::1]/h",
            "https://[fc00::1]/h",
            "https://[5f00::1]/h",
            "https://[3fff::1]/h",
            "https://[3fff:fff::1]/h",
            "https://[2001:db8::1]/h",
            "https://[2001::1]/h",
            "https://[2001:2::1]/h",
            "https://[2001:20::1]/h",
            "https://[2620:4f:8000::1]/h",
            "https://[64:ff9b::8.8.8.8]/h",
            "https://[64:ff9b:1::1]/h",
            "https://[100::1]/h",
            "https://[4000::1]/h",
            "https://[ff02::1]/h",
            "https://[2002:0808:0808::1]/h",
            "https://192.31.196.1/h",
            "https://192.52.193.1/h",
            "https://192.175.48.1/h",
            "https://192.0.0.9/h",
            "https://255.255.255.255/h",
            "https://localhost/h",
            "https://api.localhost/h",
            "https://metadata.google.internal/h",
        ] {
            assert!(check_url(url, false).is_err(), "{url} was let through");
        }
    }

    #[test]
    fn lets_public_https_through_and_refuses_the_rest() {
        for url in [
            "https://hooks.example.com/rapport",
            "https://93.184.215.14/h",
            "https://[2606:4700::1111]/h",
            "https://[2a00:1450:4001::1]/h",
            "https://[3001::1]/h",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
        assert!(check_url("http://hooks.example.com/", false).unwrap_err().contains("https"));
        assert!(check_url("ftp://hooks.example.com/", false).is_err());
        assert!(check_url("https://user:pw@hooks.example.com/", false).unwrap_err().contains("credentials"));
        assert!(check_url("not a url", false).is_err());
        // Allowed on a LAN or in tests.
        assert!(check_url("http://127.0.0.1:8080/h", true).is_ok());
    }
}
