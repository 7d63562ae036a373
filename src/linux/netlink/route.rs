//! IPv4 routes and policy rules: the default route via a gateway, a local
//! default route in a table of its own, a firewall-mark rule.

use std::io;
use std::net::Ipv4Addr;

use super::wire::{Msg, NLM_F_CREATE, NLM_F_EXCL};
use super::Route;

// linux/rtnetlink.h, linux/fib_rules.h
pub(super) const RTM_NEWROUTE: u16 = 24;
pub(super) const RTM_NEWRULE: u16 = 32;
pub(super) const RTA_OIF: u16 = 4;
pub(super) const RTA_GATEWAY: u16 = 5;
pub(super) const RTN_LOCAL: u8 = 2;
pub(super) const RT_SCOPE_HOST: u8 = 254;
pub(super) const FRA_FWMARK: u16 = 10;
pub(super) const FR_ACT_TO_TBL: u8 = 1;
pub(super) const RT_TABLE_MAIN: u8 = 254;
pub(super) const RTPROT_BOOT: u8 = 3;
pub(super) const RT_SCOPE_UNIVERSE: u8 = 0;
pub(super) const RTN_UNICAST: u8 = 1;

impl Route {
    /// an address of a link that is up (else ENETUNREACH); EEXIST when a
    /// default route exists.
    pub fn add_default_route_v4(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol,
        // scope, type, flags.
        m.put(&[
            libc::AF_INET as u8,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        m.put(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets());
        self.ack(m)
    }

    /// In routing table `table`, deliver every IPv4 destination locally
    /// (a route of type local, 0.0.0.0/0 through link `dev`): the route
    /// that lets a transparent socket (IP_TRANSPARENT) bound to another
    /// host's address receive its replies. EEXIST when it is there.
    pub fn add_local_default_route_v4(&mut self, table: u8, dev: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        m.put(&[
            libc::AF_INET as u8,
            0,
            0,
            0,
            table,
            RTPROT_BOOT,
            RT_SCOPE_HOST,
            RTN_LOCAL,
        ]);
        m.put(&0u32.to_ne_bytes());
        m.attr_u32(RTA_OIF, dev);
        self.ack(m)
    }

    /// A policy rule: IPv4 packets carrying firewall mark `mark` are routed
    /// by table `table`.
    pub fn add_fwmark_rule_v4(&mut self, mark: u32, table: u8) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL);
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, two
        // reserved bytes, action, flags.
        m.put(&[libc::AF_INET as u8, 0, 0, 0, table, 0, 0, FR_ACT_TO_TBL]);
        m.put(&0u32.to_ne_bytes());
        m.attr_u32(FRA_FWMARK, mark);
        self.ack(m)
    }
}
