//! The link's health as the core hears it: at once on a connection, and at each change (a
//! challenge and its answer, credentials refused), never an exit.

use super::*;

#[tokio::test(flavor = "current_thread")]
async fn the_core_hears_the_links_health_at_once_and_at_each_change() {
    local(async {
        let mut h = Harness::new("health");
        h.start();
        let mut core = h.accept().await;
        // First line of a connection: connected, nothing wrong, and the build.
        let first = core.health_line().await;
        assert!(first.connected, "{first:?}");
        // How the connections leave, as the relay was told (`[network] proxy`).
        assert_eq!(first.proxy.as_deref(), Some(TEST_PROXY));
        assert_eq!(first.registration, Registration::Ok);
        assert!(
            first.build.capabilities.contains(&"spqr".to_string()),
            "{first:?}"
        );
        // A 428 on a send: the challenge, then its answer, then the send goes through.
        h.seen.borrow_mut().challenge = Some("tok".into());
        h.device(DeviceEvent::QueueEmpty);
        core.say(&send("1", 1_000)).await;
        let failed = core.line().await;
        assert!(
            matches!(
                failed,
                GatewayEvent::SendFailed {
                    retryable: false,
                    ..
                }
            ),
            "{failed:?}"
        );
        let proof = loop {
            let l = core.health_line().await;
            if l.registration == Registration::ProofRequired {
                break l;
            }
        };
        assert_eq!(proof.registration, Registration::ProofRequired);
        assert_eq!(
            proof.challenge.as_ref().map(|c| c.token.as_str()),
            Some("tok")
        );
        core.say(&CoreCommand::SubmitChallenge {
            token: "tok".into(),
            captcha: "wrong".into(),
        })
        .await;
        let still = core.health_line().await;
        assert_eq!(still.registration, Registration::ProofRequired);
        assert!(still
            .detail
            .unwrap_or_default()
            .contains("refused the captcha"));
        core.say(&CoreCommand::SubmitChallenge {
            token: "tok".into(),
            captcha: "solved".into(),
        })
        .await;
        let answered = core.health_line().await;
        assert_eq!(answered.registration, Registration::Ok);
        assert_eq!(answered.challenge, None);
        core.say(&send("2", 2_000)).await;
        assert_eq!(core.line().await, sent("2", 2_000));
        assert_eq!(h.seen.borrow().answers.len(), 2);
        // Credentials refused: reported, not an exit; the core's lines still answered.
        h.seen.borrow_mut().refused = true;
        h.drop_websocket();
        let lost = loop {
            let l = core.health_line().await;
            if l.registration == Registration::Unlinked {
                break l;
            }
        };
        assert!(!lost.connected);
        assert!(lost
            .detail
            .unwrap_or_default()
            .contains("credentials refused"));
        h.stop().await;
    })
    .await;
}

/// Unlinked (or unregistered) while the gateway was down: Signal refuses it at start, and the
/// core hears so at once, on an unsealed installation and on a sealed one (once the core has
/// handed over the key). Before, the gateway waited on Signal before ever serving the core,
/// so such a link died silently: no gateway at all for the core, or a sealed gateway that
/// never said a word.
#[tokio::test(flavor = "current_thread")]
async fn a_registration_refused_at_start_reaches_the_core() {
    local(async {
        for sealed in [false, true] {
            let mut h = Harness::new(&format!("refused-at-start-{sealed}"));
            h.seen.borrow_mut().refused = true;
            if sealed {
                h.start_sealed();
            } else {
                h.start();
            }
            let mut core = h.accept().await;
            if sealed {
                core.say(&store_key("k1")).await;
            }
            let first = core.health_line().await;
            assert_eq!(
                first.registration,
                Registration::Unlinked,
                "sealed {sealed}"
            );
            assert!(!first.connected, "sealed {sealed}: {first:?}");
            assert!(
                first
                    .detail
                    .unwrap_or_default()
                    .contains("credentials refused"),
                "sealed {sealed}"
            );
            h.stop().await;
        }
    })
    .await;
}
