//! Tests of the container record: its states and transitions, the live status, what is saved and read back.

use super::*;

fn record(store: &Store) -> ContainerRecord {
    let mut rec = ContainerRecord::saved_for_test(store, "full");
    rec.state = State::running(1);
    rec.save(store).unwrap();
    rec
}

#[test]
fn the_state_goes_from_created_to_running_paused_and_exited() {
    let created = State::default();
    assert_eq!(created.status, Status::Created);
    assert!(!created.running && created.pid == 0);
    let mut s = State::running(7);
    assert_eq!(
        (s.status, s.running, s.paused, s.pid),
        (Status::Running, true, false, 7)
    );
    assert!(!s.started_at.is_empty());
    assert_eq!(s.finished_at, ZERO_TIME);
    s.pause("freezer");
    assert_eq!(
        (s.status, s.running, s.paused),
        (Status::Paused, true, true)
    );
    assert_eq!(s.pause_method, "freezer");
    s.unpause();
    assert_eq!((s.status, s.paused), (Status::Running, false));
    assert!(s.pause_method.is_empty());
    // A paused container killed: nothing of the pause stays.
    s.pause("SIGSTOP");
    s.finish(137);
    assert_eq!(
        (s.status, s.running, s.paused, s.pid),
        (Status::Exited, false, false, 0)
    );
    assert_eq!(s.exit_code, 137);
    assert!(s.pause_method.is_empty());
    assert_ne!(s.finished_at, ZERO_TIME);
    // Started again: a new run, its own times.
    let again = State::running(8);
    assert_eq!(
        (again.exit_code, again.finished_at.as_str()),
        (0, ZERO_TIME)
    );
}

#[test]
fn the_live_status_corrects_a_dead_supervisor_and_shows_a_restart() {
    use Status::*;
    let me = std::process::id() as i32;
    // Stored status, PID 1 alive, restarting, a monitor alive; then the
    // live status, inspect's status and exit code, and how ps's status
    // begins.
    let cases = [
        (Created, false, false, false, Created, 0, "Created"),
        (Running, true, false, false, Running, 0, "Up "),
        (Paused, true, false, false, Paused, 0, "Up "),
        (Running, true, false, true, Running, 0, "Up "),
        (Running, false, false, false, Exited, 137, "Exited (137)"),
        (Paused, false, false, false, Exited, 137, "Exited (137)"),
        (Exited, false, false, false, Exited, 3, "Exited (3)"),
        (Exited, false, true, true, Restarting, 3, "Restarting (3)"),
        (Exited, false, true, false, Exited, 3, "Exited (3)"),
    ];
    for (stored, alive, restarting, monitor, live, code, text) in cases {
        let (_d, store) = crate::store::temp_store();
        let mut rec = record(&store);
        rec.state = match stored {
            Created => State::default(),
            Running | Paused => State::running(me),
            Restarting | Exited => {
                let mut s = State::running(me);
                s.finish(3);
                s
            }
        };
        if stored == Paused {
            rec.state.pause("SIGSTOP");
        }
        rec.state.restarting = restarting;
        if alive {
            rec.write_pid_file(&store).unwrap();
        }
        let _held = monitor.then(|| rec.lock_monitor(&store).unwrap().unwrap());
        let case = format!("{stored:?} alive {alive} restarting {restarting} monitor {monitor}");
        assert_eq!(rec.monitor_alive(&store), monitor, "{case}");
        assert_eq!(rec.live_status(&store), live, "{case}");
        assert_eq!(
            rec.is_up(&store),
            matches!(live, Running | Paused),
            "{case}"
        );
        assert_eq!(rec.is_restarting(&store), live == Restarting, "{case}");
        let shown = rec.clone().with_live_state(&store);
        assert_eq!(shown.state.status, live, "{case}");
        assert_eq!(shown.state.exit_code, code, "{case}");
        assert_eq!(
            shown.state.running,
            matches!(live, Running | Paused),
            "{case}"
        );
        assert_eq!(shown.state.restarting, live == Restarting, "{case}");
        assert_eq!(shown.state.error.is_empty(), code != 137, "{case}");
        let ps = rec.status_text(&store);
        assert!(ps.starts_with(text), "{case}: {ps}");
        assert_eq!(ps.ends_with("(Paused)"), live == Paused, "{case}: {ps}");
    }
}

#[test]
fn an_exit_the_record_cannot_take_is_kept_in_the_reserved_file() {
    let (_d, store) = crate::store::temp_store();
    let mut rec = record(&store);
    let exit = store.container_dir(&rec.id).join(EXIT_FILE);
    assert_eq!(std::fs::metadata(&exit).unwrap().len(), EXIT_SPACE as u64);
    // The record is replaced through the store's tmp/: where that
    // cannot be written (as on a full disk), the save fails.
    let tmp = store.root().join("tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, b"").unwrap();
    rec.state.finish(3);
    let long = "x".repeat(3 * EXIT_SPACE);
    rec.save_exit(&store, &[long]).unwrap();
    // Rewritten in place: the same size.
    assert_eq!(std::fs::metadata(&exit).unwrap().len(), EXIT_SPACE as u64);
    let back = ContainerRecord::load(&store, &rec.id).unwrap();
    assert_eq!(back.state.status, Status::Exited);
    assert_eq!(back.state.exit_code, 3);
    assert_eq!(back.state.finished_at, rec.state.finished_at);
    let problems = back.exit_problems(&store);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[1].starts_with("recording the exit in container.json: "));
    // A later run (another start time) does not take this exit.
    let mut later = back.clone();
    later.state = State::running(2);
    later.state.started_at.push('x');
    assert!(later.exit_problems(&store).is_empty());
}
