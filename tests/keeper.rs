//! The default network through the user's keeper, as the unprivileged
//! users: containers get addresses on one bridge and reach each other, one
//! helper serves them all, the keeper goes when idle and leaves nothing,
//! and killing its helper or the keeper itself takes no running container
//! down nor its network. A user without a subordinate range (and
//! `--userns=private`) gets today's helper per container.
//!
//! Every script runs in one private mount namespace the test makes, with a
//! tun device open to everyone: the keeper is per mount namespace, so the
//! commands of one script share one, and no other test's.

mod common;

use std::process::{Command, Output};

use common::{host, loud, shell_line, stderr, stdout, Env, Who};

/// Run `body` as root in a fresh mount namespace with an open tun device;
/// `B ARGS` in it runs burrow as the test user, `K` names the keeper's
/// directory and `U` the user's uid. None (said loudly) when not root.
fn script(env: &Env, test: &str, body: &str) -> Option<Output> {
    script_in(env, test, body, &["--mount"])
}

/// [`script`] in the namespaces `unshare` makes with `kinds` (`--mount`,
/// and `--net` for a network namespace of the script's own).
fn script_in(env: &Env, test: &str, body: &str, kinds: &[&str]) -> Option<Output> {
    if !nix::unistd::Uid::effective().is_root() {
        loud(&format!(
            "SKIPPED {test} [{:?}]: the keeper's scripts make a mount namespace, which needs root",
            env.who
        ));
        return None;
    }
    let burrow = shell_line(env, "");
    let (uid, _) = env.ids();
    let file = env.user_dir("scripts").join(format!("{test}.sh"));
    std::fs::write(
        &file,
        format!(
            "set -e\n{}\nB() {{ {burrow} \"$@\"; }}\nU={uid}\nK=/tmp/burrow-run-$U/keeper-$(stat -L -c %i /proc/self/ns/mnt)-$(stat -L -c %i /proc/self/ns/net)\n{body}\n",
            host::TUN_OPEN
        ),
    )
    .unwrap();
    Some(
        Command::new("/usr/bin/unshare")
            .args(kinds)
            .args(["--propagation", "private", "--", "/bin/sh"])
            .arg(&file)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .unwrap(),
    )
}

/// The test user with a subordinate range (the keeper needs one), with
/// busybox imported as `bb`; the one without is the first test's.
fn with_range(name: &str) -> Vec<Env> {
    let envs: Vec<Env> = common::users(name)
        .into_iter()
        .filter(|e| e.who == Who::Range)
        .collect();
    for env in &envs {
        env.import_busybox("bb");
    }
    envs
}

/// `key=value` lines of a script's output.
fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
}

/// Shell: wait up to 20 s for `cond` (pause-tolerant: a deadline in
/// tries, not one long sleep).
fn until(cond: &str) -> String {
    format!("i=0; until {cond}; do i=$((i+1)); [ $i -lt 200 ] || break; sleep 0.1; done")
}

#[test]
fn default_network_containers_share_one_bridge_and_one_helper() {
    for env in common::users("keeper-share") {
        env.import_busybox("bb");
        let body = r#"B run -d --name a bb httpd -f -p 8080 -h /etc >/dev/null
echo "ip=$(B inspect -f '{{.NetworkSettings.IPAddress}}' a)"
echo "gw=$(B inspect -f '{{.NetworkSettings.Gateway}}' a)"
echo "name=$(B inspect -f '{{.Config.Hostname}}' a)"
IP=$(B inspect -f '{{.NetworkSettings.IPAddress}}' a)
if [ -n "$IP" ]; then echo "got=$(B run --rm bb timeout 5 wget -q -O- http://$IP:8080/hostname)"; fi
echo "eth0=$(B run --rm bb ip -4 -o addr show eth0 | awk '{print $4}')"
echo "info=$(B info | grep '^Keeper:')"
if [ -f $K/state.json ]; then
  KP=$(sed 's/.*"keeper":{"pid":\([0-9]*\).*/\1/' $K/state.json)
  echo "keeper=$KP"
  echo "pastas=$(ps --ppid $KP -o comm= | grep -c pass)"
fi
B rm -f a >/dev/null
echo done=1"#;
        let Some(o) = script(&env, "keeper-share", body) else {
            return;
        };
        let out = stdout(&o);
        assert!(o.status.success(), "[{:?}] {out}{}", env.who, stderr(&o));
        assert_eq!(field(&out, "done"), "1", "{out}");
        match env.who {
            Who::Range => {
                let ip = field(&out, "ip");
                assert!(ip.starts_with("10.88."), "[Range] address {ip:?}: {out}");
                assert_eq!(field(&out, "gw"), "10.88.0.1", "{out}");
                // The second container reached the first on the bridge.
                assert_eq!(field(&out, "got"), field(&out, "name"), "{out}");
                assert!(field(&out, "eth0").starts_with("10.88."), "{out}");
                // One keeper, one helper, for all of them.
                assert!(!field(&out, "keeper").is_empty(), "{out}");
                assert_eq!(field(&out, "pastas"), "1", "{out}");
                // `info` knows it, and that a container is on its network.
                assert!(
                    field(&out, "info").contains("running (pid")
                        && field(&out, "info").contains("1 containers"),
                    "{out}"
                );
            }
            Who::Single => {
                // No range: no keeper; a helper of its own, as before.
                assert_eq!(field(&out, "ip"), "", "[Single] {out}");
                assert!(!field(&out, "eth0").starts_with("10.88."), "{out}");
                assert_eq!(field(&out, "keeper"), "", "{out}");
            }
        }
    }
}

#[test]
fn a_private_user_namespace_is_kept_on_request() {
    for env in with_range("keeper-private") {
        // The shared namespace maps the range as a private one does; what
        // tells them apart is the address: a private one has no bridge.
        let body = r#"echo "shared=$(B run --rm bb ip -4 -o addr show eth0 | awk '{print $4}')"
echo "private=$(B run --rm --userns=private bb ip -4 -o addr show eth0 | awk '{print $4}')"
echo "uidmap=$(B run --rm --userns=private bb cat /proc/self/uid_map | wc -l)""#;
        let Some(o) = script(&env, "keeper-private", body) else {
            return;
        };
        let out = stdout(&o);
        assert!(o.status.success(), "{out}{}", stderr(&o));
        assert!(field(&out, "shared").starts_with("10.88."), "{out}");
        let private = field(&out, "private");
        assert!(
            !private.is_empty() && !private.starts_with("10.88."),
            "{out}"
        );
        assert_eq!(field(&out, "uidmap"), "2", "{out}");
    }
}

#[test]
fn an_idle_keeper_goes_and_a_stale_one_is_replaced() {
    for env in with_range("keeper-idle") {
        let body = format!(
            r#"export BURROW_KEEPER_IDLE=1
B() {{ {burrow} "$@"; }}
B run --rm bb true
KP=$(sed 's/.*"keeper":{{"pid":\([0-9]*\).*/\1/' $K/state.json)
HP=$(sed 's/.*"holder":{{"pid":\([0-9]*\).*/\1/' $K/state.json)
echo "started=$KP"
{wait}
if kill -0 $KP 2>/dev/null || kill -0 $HP 2>/dev/null; then echo left=1; fi
if [ -e $K ]; then echo dir=1; fi
mkdir -p $K
printf '{{"keeper":{{"pid":1,"start":1}},"holder":{{"pid":1,"start":1}},"helper":"pasta"}}' > $K/state.json
chown -R $U $K
echo "check=$(B system check | grep -c stale)"
echo "after=$(B run --rm bb ip -4 -o addr show eth0 | awk '{{print $4}}')"
echo done=1"#,
            burrow = shell_line(&env, "").replacen("env -i ", "env -i BURROW_KEEPER_IDLE=1 ", 1),
            wait = until("! kill -0 $KP 2>/dev/null"),
        );
        let Some(o) = script(&env, "keeper-idle", &body) else {
            return;
        };
        let out = stdout(&o);
        assert!(o.status.success(), "{out}{}", stderr(&o));
        assert_eq!(field(&out, "done"), "1", "{out}");
        assert!(!field(&out, "started").is_empty(), "{out}");
        assert_eq!(
            field(&out, "left"),
            "",
            "the keeper outlived its idle period: {out}"
        );
        assert_eq!(field(&out, "dir"), "", "its directory stayed: {out}");
        // A state naming processes that are not the keeper's: `system
        // check` says so, and the next start replaces it.
        assert_eq!(field(&out, "check"), "1", "{out}");
        assert!(field(&out, "after").starts_with("10.88."), "{out}");
    }
}

#[test]
fn killing_the_helper_or_the_keeper_takes_no_container_down() {
    for env in with_range("keeper-kill") {
        let body = format!(
            r#"B run -d --name a bb httpd -f -p 8080 -h /etc >/dev/null
IP=$(B inspect -f '{{{{.NetworkSettings.IPAddress}}}}' a)
KP=$(sed 's/.*"keeper":{{"pid":\([0-9]*\).*/\1/' $K/state.json)
HP=$(sed 's/.*"holder":{{"pid":\([0-9]*\).*/\1/' $K/state.json)
helper() {{ ps --ppid $KP -o pid=,comm= | awk '/pass/ {{print $1}}'; }}
P1=$(helper)
kill -9 $P1
{pasta_back}
P2=$(helper)
echo "pasta_again=$([ -n "$P2" ] && [ "$P2" != "$P1" ] && echo 1)"
kill -9 $KP
{keeper_gone}
echo "running=$(B inspect -f '{{{{.State.Running}}}}' a)"
echo "got=$(B run --rm bb timeout 5 wget -q -O- http://$IP:8080/hostname)"
echo "name=$(B inspect -f '{{{{.Config.Hostname}}}}' a)"
HP2=$(sed 's/.*"holder":{{"pid":\([0-9]*\).*/\1/' $K/state.json)
KP2=$(sed 's/.*"keeper":{{"pid":\([0-9]*\).*/\1/' $K/state.json)
echo "same_holder=$([ "$HP" = "$HP2" ] && echo 1)"
echo "new_keeper=$([ "$KP" != "$KP2" ] && echo 1)"
B rm -f a >/dev/null
echo done=1"#,
            pasta_back = until("[ -n \"$(helper)\" ] && [ \"$(helper)\" != \"$P1\" ]"),
            keeper_gone = until("! kill -0 $KP 2>/dev/null"),
        );
        let Some(o) = script(&env, "keeper-kill", &body) else {
            return;
        };
        let out = stdout(&o);
        assert!(o.status.success(), "{out}{}", stderr(&o));
        assert_eq!(field(&out, "done"), "1", "{out}");
        assert_eq!(
            field(&out, "pasta_again"),
            "1",
            "the helper was not started again: {out}"
        );
        assert_eq!(field(&out, "running"), "true", "{out}");
        assert_eq!(field(&out, "got"), field(&out, "name"), "{out}");
        assert_eq!(field(&out, "same_holder"), "1", "{out}");
        assert_eq!(field(&out, "new_keeper"), "1", "{out}");
    }
}

#[test]
fn a_container_on_the_keepers_network_holds_none_of_its_descriptors() {
    // What a hostile image could reach for: the holder's namespaces, the
    // lease and the users lock are the inner process's, which stays
    // outside the container's pid namespace; PID 1 and everything it
    // starts or that is exec'd in must hold only their standard streams.
    for env in with_range("keeper-fds") {
        let body = r#"B run -d --name h bb sleep 300 >/dev/null
echo "ip=$(B inspect -f '{{.NetworkSettings.IPAddress}}' h)"
echo "pid1=$(B exec h ls /proc/1/fd | tr '\n' ' ')"
B exec h ls -l /proc/1/fd /proc/self/fd | sed 's/^/exec: /'
B run --rm bb ls -l /proc/self/fd | sed 's/^/run: /'
echo "tasks=$(B exec h ls /proc | grep -c '^[0-9]')"
B rm -f h >/dev/null
echo done=1"#;
        let Some(o) = script(&env, "keeper-fds", body) else {
            return;
        };
        let out = stdout(&o);
        assert!(o.status.success(), "{out}{}", stderr(&o));
        assert_eq!(field(&out, "done"), "1", "{out}");
        assert!(field(&out, "ip").starts_with("10.88."), "{out}");
        assert_eq!(field(&out, "pid1").trim(), "0 1 2", "{out}");
        // The targets a descriptor could name: no namespace, no file of
        // the keeper's directory, nothing of the runtime directory.
        for line in out
            .lines()
            .filter(|l| l.starts_with("exec: ") || l.starts_with("run: "))
        {
            for bad in ["net:[", "user:[", "mnt:[", "keeper", "lease", "burrow-run"] {
                assert!(!line.contains(bad), "{bad} reached: {line}\n{out}");
            }
        }
        assert!(
            out.lines().filter(|l| l.contains(" -> ")).count() >= 6,
            "no descriptor was listed: {out}"
        );
        // Only PID 1 and the `ls` exec'd in: the holder and the inner
        // process are not in the container's pid namespace.
        assert_eq!(field(&out, "tasks"), "2", "{out}");
    }
}

#[test]
fn a_user_network_is_a_bridge_of_the_keeper_with_names_in_its_dns() {
    for env in with_range("keeper-usernet") {
        let body = r#"B network create appnet >/dev/null
B network create other >/dev/null
B run -d --name web --network appnet --network-alias www bb httpd -f -p 8080 -h /etc >/dev/null
ID=$(B inspect -f '{{.Id}}' web)
IP=$(B inspect -f '{{.NetworkSettings.Networks.appnet.IPAddress}}' web)
echo "ip=$IP"
echo "gw=$(B inspect -f '{{.NetworkSettings.Networks.appnet.Gateway}}' web)"
echo "mac=$(B inspect -f '{{.NetworkSettings.Networks.appnet.MacAddress}}' web)"
echo "name=$(B inspect -f '{{.Config.Hostname}}' web)"
look() { B run --rm --network $1 bb nslookup $2 2>&1 | awk '/^Address/ && !/#|:53/ {print $2}' | tail -1; }
echo "by_name=$(look appnet web)"
echo "by_alias=$(look appnet www)"
echo "by_id=$(look appnet $(echo $ID | cut -c1-12))"
echo "unknown=$(B run --rm --network appnet bb nslookup nothere 2>&1 | grep -q NXDOMAIN && echo 1)"
echo "resolver=$(B run --rm --network appnet bb cat /etc/resolv.conf | awk '/^nameserver/ {print $2}')"
echo "got=$(B run --rm --network appnet bb timeout 5 wget -q -O- http://www:8080/hostname)"
echo "from_other=$(look other web)"
echo "ping_other=$(B run --rm --network other bb ping -c1 -W2 $IP >/dev/null 2>&1 && echo reached)"
echo "ping_default=$(B run --rm bb ping -c1 -W2 $IP >/dev/null 2>&1 && echo reached)"
echo "switches=$(ps -u $U -o args= | grep -c '[_]_switch')"
echo "rm_in_use=$(B network rm appnet 2>&1 | grep -c 'in use')"
B rm -f web >/dev/null
echo "after=$(B run --rm --network appnet bb nslookup web 2>&1 | grep -q NXDOMAIN && echo 1)"
HP=$(sed 's/.*"holder":{"pid":\([0-9]*\).*/\1/' $K/state.json)
bridges() { nsenter -t $HP -n ip -o link show type bridge | awk -F': ' '{print $2}' | sort | tr '\n' ' '; }
echo "bridges_before=$(bridges)"
B network rm appnet other >/dev/null
echo "bridges_after=$(bridges)"
echo "leases_after=$(ls $K/leases | tr '\n' ' ')"
echo done=1"#;
        let Some(o) = script(&env, "keeper-usernet", body) else {
            return;
        };
        let out = stdout(&o);
        assert!(o.status.success(), "{out}{}", stderr(&o));
        assert_eq!(field(&out, "done"), "1", "{out}");
        let ip = field(&out, "ip");
        assert!(ip.starts_with("10.89."), "{out}");
        assert_eq!(field(&out, "gw"), "10.89.0.1", "{out}");
        let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
        let mac = format!(
            "02:42:{:02x}:{:02x}:{:02x}:{:02x}",
            octets[0], octets[1], octets[2], octets[3]
        );
        assert_eq!(field(&out, "mac"), mac, "{out}");
        // The network's DNS answers the name, the alias and the short id,
        // and nothing else of its own.
        assert_eq!(field(&out, "by_name"), ip, "{out}");
        assert_eq!(field(&out, "by_alias"), ip, "{out}");
        assert_eq!(field(&out, "by_id"), ip, "{out}");
        assert_eq!(field(&out, "unknown"), "1", "{out}");
        assert_eq!(field(&out, "resolver"), "10.89.0.1", "{out}");
        assert_eq!(field(&out, "got"), field(&out, "name"), "{out}");
        // Another network, and the default one, neither resolve nor reach it.
        assert_eq!(field(&out, "from_other"), "", "{out}");
        assert_eq!(field(&out, "ping_other"), "", "{out}");
        assert_eq!(field(&out, "ping_default"), "", "{out}");
        // No switch: the keeper's namespace carries the network.
        assert_eq!(field(&out, "switches"), "0", "{out}");
        assert_eq!(field(&out, "rm_in_use"), "1", "{out}");
        // Gone with its container.
        assert_eq!(field(&out, "after"), "1", "{out}");
        // Removed networks leave no bridge and no leases in the keeper.
        let before: Vec<&str> = field(&out, "bridges_before").split_whitespace().collect();
        assert_eq!(before.len(), 3, "{out}");
        assert!(before.contains(&"burrow0"), "{out}");
        assert_eq!(field(&out, "bridges_after").trim(), "burrow0", "{out}");
        assert_eq!(field(&out, "leases_after").trim(), "10.88.0.1", "{out}");
    }
}

#[test]
fn a_full_network_refuses_the_container_and_the_keeper_stays_in_use() {
    for env in with_range("keeper-full") {
        // A /29 has five addresses beside its gateway.
        let body = r#"B network create --subnet 10.89.77.0/29 tiny >/dev/null
for n in 1 2 3 4 5; do B run -d --name on$n --network tiny bb sleep 600 >/dev/null; done
code=0
err=$(B run --rm --network tiny bb true 2>&1 >/dev/null) || code=$?
echo "code=$code"
echo "err=$err"
echo "unusable=$(ls $K.unusable 2>/dev/null | wc -l)"
echo "default=$(B run --rm bb ip -4 -o addr show eth0 | awk '{print $4}')"
FREED=$(B inspect -f '{{.NetworkSettings.Networks.tiny.IPAddress}}' on3)
B rm -f on3 >/dev/null
echo "freed=$FREED"
echo "again=$(B run --rm --network tiny bb ip -4 -o addr show eth0 | awk '{print $4}')"
B rm -f on1 on2 on4 on5 >/dev/null
B network rm tiny >/dev/null
echo done=1"#;
        let Some(o) = script(&env, "keeper-full", body) else {
            return;
        };
        let out = stdout(&o);
        assert!(o.status.success(), "{out}{}", stderr(&o));
        assert_eq!(field(&out, "done"), "1", "{out}");
        assert_eq!(field(&out, "code"), "125", "{out}");
        assert!(
            field(&out, "err").contains("no free address left in 10.89.77.0/29"),
            "{out}"
        );
        // Not the keeper's failure: the next containers still use it.
        assert_eq!(field(&out, "unusable"), "0", "{out}");
        assert!(field(&out, "default").starts_with("10.88."), "{out}");
        // An address given back is leased again.
        assert_eq!(
            field(&out, "again"),
            format!("{}/29", field(&out, "freed")),
            "{out}"
        );
    }
}

#[test]
fn a_container_connected_to_a_second_network_reaches_both_and_is_named_in_each() {
    for env in with_range("keeper-twonets") {
        let body = r#"B network create front >/dev/null
B network create back >/dev/null
B run -d --name web --network front bb httpd -f -p 8080 -h /etc >/dev/null
B run -d --name db --network back --network-alias database bb httpd -f -p 8080 -h /etc >/dev/null
B create --name app --network front bb sleep 300 >/dev/null
B network connect --alias api back app
B start app >/dev/null
echo "ifaces=$(B exec app ip -4 -o addr | awk '/eth/ {print $2}' | tr '\n' ' ')"
echo "routes=$(B exec app ip route | grep -c default)"
echo "web=$(B exec app timeout 5 wget -q -O- http://web:8080/hostname)"
echo "db=$(B exec app timeout 5 wget -q -O- http://database:8080/hostname)"
echo "web_name=$(B inspect -f '{{.Config.Hostname}}' web)"
echo "db_name=$(B inspect -f '{{.Config.Hostname}}' db)"
echo "api=$(B exec db nslookup api 2>&1 | awk '/^Address/ && !/:53/ {print $2}')"
echo "back_ip=$(B inspect -f '{{.NetworkSettings.Networks.back.IPAddress}}' app)"
echo "front_ip=$(B inspect -f '{{.NetworkSettings.Networks.front.IPAddress}}' app)"
echo "web_sees_db=$(B exec web nslookup db 2>&1 | grep -q NXDOMAIN || echo yes)"
# Live: web, running, joins back too, then leaves it.
B network connect --alias w2 back web
echo "live_ifaces=$(B exec web ip -4 -o addr | awk '/eth/ {print $2}' | tr '\n' ' ')"
echo "live_db=$(B exec web timeout 5 wget -q -O- http://database:8080/hostname)"
echo "live_name=$(B exec db nslookup w2 2>&1 | awk '/^Address/ && !/:53/ {print $2}')"
echo "live_ip=$(B inspect -f '{{.NetworkSettings.Networks.back.IPAddress}}' web)"
echo "again=$(B network connect back web 2>&1 | grep -c 'already on network')"
B network disconnect back web
echo "left_ifaces=$(B exec web ip -4 -o addr | awk '/eth/ {print $2}' | tr '\n' ' ')"
echo "left_name=$(B exec db nslookup w2 2>&1 | grep -q NXDOMAIN && echo gone)"
echo "left_record=$(B inspect -f '{{len .NetworkSettings.Networks}}' web)"
# A container on the default network joins a user network live, and its
# resolver becomes the network's.
B run -d --name dflt bb sleep 300 >/dev/null
B network connect back dflt
echo "dflt_db=$(B exec dflt timeout 5 wget -q -O- http://database:8080/hostname)"
echo "dflt_resolver=$(B exec dflt cat /etc/resolv.conf | awk '/^nameserver/ {print $2}')"
B rm -f app web db dflt >/dev/null
{lease_gone}
echo "leases=$(ps -u $U -o args= | grep -c '^burrow __lease')"
B network rm front back >/dev/null
echo done=1"#
            .replace(
                "{lease_gone}",
                &until("[ $(ps -u $U -o args= | grep -c '^burrow __lease') = 0 ]"),
            );
        let Some(o) = script(&env, "keeper-twonets", &body) else {
            return;
        };
        let out = stdout(&o);
        assert!(o.status.success(), "{out}{}", stderr(&o));
        assert_eq!(field(&out, "done"), "1", "{out}");
        assert_eq!(field(&out, "ifaces").trim(), "eth0 eth1", "{out}");
        // One default route, through its own network's gateway.
        assert_eq!(field(&out, "routes"), "1", "{out}");
        assert_eq!(field(&out, "web"), field(&out, "web_name"), "{out}");
        assert_eq!(field(&out, "db"), field(&out, "db_name"), "{out}");
        let back = field(&out, "back_ip");
        assert!(back.starts_with("10.89.1."), "{out}");
        assert!(field(&out, "front_ip").starts_with("10.89.0."), "{out}");
        // Its alias on the second network answers there, with that
        // network's address; a member of one network sees none of the other.
        assert_eq!(field(&out, "api"), back, "{out}");
        assert_eq!(field(&out, "web_sees_db"), "", "{out}");
        assert_eq!(field(&out, "live_ifaces").trim(), "eth0 eth1", "{out}");
        assert_eq!(field(&out, "live_db"), field(&out, "db_name"), "{out}");
        let live_ip = field(&out, "live_ip");
        assert!(live_ip.starts_with("10.89.1."), "{out}");
        assert_eq!(field(&out, "live_name"), live_ip, "{out}");
        assert_eq!(field(&out, "again"), "1", "{out}");
        assert_eq!(field(&out, "left_ifaces").trim(), "eth0", "{out}");
        assert_eq!(field(&out, "left_name"), "gone", "{out}");
        assert_eq!(field(&out, "left_record"), "1", "{out}");
        assert_eq!(field(&out, "dflt_db"), field(&out, "db_name"), "{out}");
        assert_eq!(field(&out, "dflt_resolver"), "10.89.1.1", "{out}");
        // What held the addresses given after start went with PID 1.
        assert_eq!(field(&out, "leases"), "0", "{out}");
    }
}

#[test]
fn a_published_port_shows_the_server_its_clients_address() {
    if !common::have("python3") {
        loud("SKIPPED a_published_port_shows_the_server_its_clients_address: the client is the host's python3 (apt-get install python3)");
        return;
    }
    for env in with_range("keeper-client-addr") {
        // In a network namespace of the script's own: a default route (so
        // the keeper has a helper), and a client in a second namespace
        // behind a veth pair, at an address that is not ours.
        let body = r#"ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.203.0.2/24 dev v0
ip link set v0 up
ip link set v1 up
ip route add default via 10.203.0.1 dev v0
ip netns add cl$$
ip link add h0 type veth peer name c0 netns cl$$
ip addr add 10.231.7.1/24 dev h0
ip link set h0 up
ip netns exec cl$$ ip addr add 10.231.7.2/24 dev c0
ip netns exec cl$$ ip link set c0 up
B run -d --name srv -p 18080:9000 bb sh -c 'while true; do nc -l -p 9000 -e sh -c "netstat -tn | grep :9000"; done' >/dev/null
echo "transparent=$([ -e $K/transparent ] && echo yes)"
got() { addr=$1; shift; timeout 10 "$@" python3 -c 'import socket, sys
s = socket.create_connection((sys.argv[1], 18080), timeout=5)
print(s.makefile().read())' $addr 2>/dev/null | grep ESTABLISHED | awk '{print $5}'; }
try() { i=0; until out=$(got "$@"); [ -n "$out" ] || [ $i -ge 50 ]; do i=$((i+1)); sleep 0.1; done; echo "$out"; }
echo "remote=$(try 10.231.7.1 ip netns exec cl$$)"
echo "local=$(try 127.0.0.1)"
B ps -a --format '{{.Names}} {{.Status}}'
B logs srv 2>&1 | tail -3
B rm -f srv >/dev/null
ip netns del cl$$
echo done=1"#;
        let Some(o) = script_in(&env, "keeper-client-addr", body, &["--mount", "--net"]) else {
            return;
        };
        let out = stdout(&o);
        assert!(o.status.success(), "{out}{}", stderr(&o));
        assert_eq!(field(&out, "done"), "1", "{out}");
        assert_eq!(field(&out, "transparent"), "yes", "{out}");
        // The server saw the client's own address, and a client on the
        // host's loopback as the bridge's gateway (as Docker shows it).
        assert!(
            field(&out, "remote").starts_with("::ffff:10.231.7.2:"),
            "{out}"
        );
        assert!(
            field(&out, "local").starts_with("::ffff:10.88.0.1:"),
            "{out}"
        );
    }
}
