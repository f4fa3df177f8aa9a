// The official Authsignal Node SDK (@authsignal/node 2.21.0, unchanged) against the
// emulator: every method of the SDK (Authsignal, CallConnect, webhook.constructEvent), asserting the answers Authsignal
// documents (and that the SDK's own integration tests assert against the real API).
// Run by emulator/node_sdk_test.go: AUTHSIGNAL_URL, AUTHSIGNAL_SECRET and EMULATOR_URL
// point it at an emulator.
import { test } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { Authsignal, AuthsignalError, CallConnect } from "@authsignal/node";

const apiUrl = process.env.AUTHSIGNAL_URL;
const emulator = process.env.EMULATOR_URL;
const authsignal = new Authsignal({ apiSecretKey: process.env.AUTHSIGNAL_SECRET, apiUrl, retries: 0 });

const run = Date.now().toString(36);
const userId = `node-sdk-${run}`;
const email = `node-${run}@example.com`;

// latestCode reads the code "sent" to a recipient from the emulator's outbox.
async function latestCode(to) {
  const res = await fetch(`${emulator}/emulator/messages/latest?to=${encodeURIComponent(to)}`);
  assert.equal(res.status, 200, `no message to ${to}`);
  return (await res.json()).code;
}

const iso = (s) => typeof s === "string" && !Number.isNaN(Date.parse(s));

test("challenge, getChallenge, verify and claimChallenge sign a user in by email", async () => {
  const started = Math.floor(Date.now() / 1000);
  const challenge = await authsignal.challenge({ verificationMethod: "EMAIL_OTP", action: "signInWithEmail", email });
  assert.ok(challenge.challengeId && challenge.idempotencyKey);
  assert.ok(challenge.expiresAt > started && challenge.expiresAt <= started + 3600, "expiresAt is Unix seconds ahead");

  let found = await authsignal.getChallenge({ challengeId: challenge.challengeId });
  assert.equal(found.challengeId, challenge.challengeId);
  assert.equal(found.action, "signInWithEmail");
  assert.equal(found.email, email);
  assert.equal(found.verificationMethod, undefined, "no method until the challenge is completed");

  const code = await latestCode(email);
  const wrong = await authsignal.verify({ challengeId: challenge.challengeId, verificationCode: code === "000000" ? "111111" : "000000" });
  assert.equal(wrong.isVerified, false);
  assert.equal(wrong.failureReason, "CODE_INVALID_OR_EXPIRED");

  const verified = await authsignal.verify({ challengeId: challenge.challengeId, verificationCode: code });
  assert.equal(verified.isVerified, true);
  assert.equal(verified.email, email);
  assert.equal(verified.verificationMethod, "EMAIL_OTP");

  found = await authsignal.getChallenge({ challengeId: challenge.challengeId });
  assert.equal(found.verificationMethod, "EMAIL_OTP", "the method that completed it");

  const claim = await authsignal.claimChallenge({ challengeId: challenge.challengeId, userId });
  assert.equal(claim.verificationMethod, "EMAIL_OTP");
  const validated = await authsignal.validateChallenge({ token: claim.token });
  assert.equal(validated.isValid, true);
  assert.equal(validated.state, "CHALLENGE_SUCCEEDED");
  assert.equal(validated.userId, userId);
  assert.equal(validated.action, "signInWithEmail");
  assert.equal(validated.idempotencyKey, challenge.idempotencyKey);
});

test("enrollVerifiedAuthenticator, getAuthenticators and getUser", async () => {
  const before = await authsignal.getUser({ userId });
  assert.equal(before.isEnrolled, false, "claim enrols nothing");

  const { authenticator } = await authsignal.enrollVerifiedAuthenticator({ userId, attributes: { verificationMethod: "EMAIL_OTP", email } });
  assert.ok(authenticator.userAuthenticatorId);
  assert.equal(authenticator.userId, userId);
  assert.equal(authenticator.verificationMethod, "EMAIL_OTP");
  assert.equal(authenticator.email, email);
  assert.ok(iso(authenticator.createdAt));

  const authenticators = await authsignal.getAuthenticators({ userId });
  assert.deepEqual(authenticators.map((a) => a.userAuthenticatorId), [authenticator.userAuthenticatorId]);

  const user = await authsignal.getUser({ userId });
  assert.equal(user.isEnrolled, true);
  assert.equal(user.email, email);
  assert.ok(user.enrolledVerificationMethods.includes("EMAIL_OTP"));
  assert.ok(user.allowedVerificationMethods.includes("EMAIL_OTP"));
  assert.equal(user.defaultVerificationMethod, "EMAIL_OTP");

  const stranger = await authsignal.getUser({ userId: `${userId}-nobody` });
  assert.equal(stranger.isEnrolled, false, "any user id answers; an unknown one is not enrolled");
});

test("track, validateChallenge, getAction, updateAction and queryUserActions", async () => {
  const idempotencyKey = `w-${run}`;
  const tracked = await authsignal.track({
    userId,
    action: "withdrawal",
    attributes: { idempotencyKey, redirectUrl: "https://app.example/cb", ipAddress: "203.0.113.7", userAgent: "node-sdk-test", custom: { amount: 1500 } },
  });
  assert.equal(tracked.state, "CHALLENGE_REQUIRED");
  assert.equal(tracked.idempotencyKey, idempotencyKey);
  assert.equal(tracked.isEnrolled, true);
  assert.ok(tracked.url.startsWith(`${emulator}/challenge?token=`));
  assert.ok(tracked.token);
  assert.deepEqual(tracked.ruleIds, ["challenge-withdrawal"]);

  // Not challenged yet: the SDK's own integration test asserts exactly this.
  const pending = await authsignal.validateChallenge({ token: tracked.token, userId, action: "withdrawal" });
  assert.equal(pending.isValid, false);
  assert.equal(pending.state, "CHALLENGE_REQUIRED");
  assert.equal(pending.userId, userId);
  assert.equal(pending.action, "withdrawal");
  assert.equal(pending.idempotencyKey, idempotencyKey);

  const mismatch = await authsignal.validateChallenge({ token: tracked.token, userId: "someone-else" });
  assert.equal(mismatch.isValid, false);
  assert.equal(mismatch.state, undefined);

  const action = await authsignal.getAction({ userId, action: "withdrawal", idempotencyKey });
  assert.equal(action.state, "CHALLENGE_REQUIRED");
  assert.ok(iso(action.createdAt) && iso(action.stateUpdatedAt));
  assert.equal(action.rules[0].ruleId, "challenge-withdrawal");
  assert.notEqual(action.output, undefined);

  const updated = await authsignal.updateAction({ userId, action: "withdrawal", idempotencyKey, attributes: { state: "REVIEW_REQUIRED" } });
  assert.equal(updated.state, "REVIEW_REQUIRED");
  assert.equal((await authsignal.getAction({ userId, action: "withdrawal", idempotencyKey })).state, "REVIEW_REQUIRED");

  const actions = await authsignal.queryUserActions({ userId, actionCodes: ["withdrawal"] });
  assert.ok(Array.isArray(actions));
  assert.deepEqual(actions.map((a) => a.idempotencyKey), [idempotencyKey]);
  assert.equal(actions[0].actionCode, "withdrawal");
  assert.equal(actions[0].state, "REVIEW_REQUIRED");

  // A user with no authenticator is allowed, whatever the rules say (docs: getting-started).
  const unenrolled = await authsignal.track({ userId: `${userId}-new`, action: "withdrawal", attributes: { custom: { amount: 1500 } } });
  assert.equal(unenrolled.state, "ALLOW");
  assert.equal(unenrolled.isEnrolled, false);
});

test("updateUser and queryUsers", async () => {
  const attributes = {
    email,
    emailVerified: true,
    phoneNumber: "+6427123456",
    phoneNumberVerified: false,
    username: `user-${run}`,
    displayName: "Node SDK",
    custom: { foo: "bar" },
  };
  const updated = await authsignal.updateUser({ userId, attributes });
  assert.equal(updated.userId, userId);
  assert.equal(updated.email, email);
  assert.equal(updated.emailVerified, true);
  assert.equal(updated.phoneNumber, "+6427123456");
  assert.equal(updated.phoneNumberVerified, false);
  assert.equal(updated.username, attributes.username);
  assert.equal(updated.displayName, "Node SDK");
  assert.equal(updated.custom.foo, "bar");

  const byUsername = await authsignal.queryUsers({ username: attributes.username, limit: 5 });
  assert.deepEqual(byUsername.users.map((u) => u.userId), [userId]);
  assert.equal(byUsername.users[0].email, email);
  assert.equal(byUsername.users[0].emailVerified, true);
  assert.equal(byUsername.lastEvaluatedUserId, undefined, "one page");

  const tracked = await authsignal.track({ userId, action: "signIn" });
  const byToken = await authsignal.queryUsers({ token: tracked.token });
  assert.deepEqual(byToken.users.map((u) => u.userId), [userId]);
  assert.equal(byToken.tokenPayload.sub, userId);
  assert.equal(byToken.tokenPayload.other.actionCode, "signIn");
});

test("deleteAuthenticator and deleteUser", async () => {
  const [authenticator] = await authsignal.getAuthenticators({ userId });
  await authsignal.deleteAuthenticator({ userId, userAuthenticatorId: authenticator.userAuthenticatorId });
  assert.deepEqual(await authsignal.getAuthenticators({ userId }), []);

  await authsignal.deleteUser({ userId });
  const deleted = await authsignal.getUser({ userId });
  assert.equal(deleted.isEnrolled, false);
  assert.equal(deleted.email, undefined);
});

test("errors are AuthsignalErrors with the documented code and description", async () => {
  const wrongKey = new Authsignal({ apiSecretKey: "not-the-key", apiUrl, retries: 0 });
  await assert.rejects(wrongKey.getUser({ userId }), (err) => {
    assert.ok(err instanceof AuthsignalError);
    assert.equal(err.statusCode, 401);
    assert.equal(err.errorCode, "unauthorized");
    assert.equal(err.errorDescription, "The request is unauthorized. Check that your API key and region base URL are correctly configured.");
    return true;
  });
  await assert.rejects(authsignal.challenge({ verificationMethod: "SMS", action: "signIn", phoneNumber: "555-1234" }), (err) => {
    assert.equal(err.statusCode, 400);
    assert.equal(err.errorCode, "invalid_request");
    assert.match(err.errorDescription, /E\.164/);
    return true;
  });
  await assert.rejects(authsignal.getAction({ userId, action: "withdrawal", idempotencyKey: "no-such-key" }), (err) => {
    assert.equal(err.statusCode, 404);
    assert.equal(err.errorCode, "invalid_request");
    return true;
  });
});

test("createSession, validateSession, refreshSession, revokeSession and revokeUserSessions", async () => {
  const sessionUser = `${userId}-session`;
  const sessionEmail = `session-${run}@example.com`;
  const challenge = await authsignal.challenge({ verificationMethod: "EMAIL_OTP", action: "signInWithEmail", email: sessionEmail });
  await authsignal.verify({ challengeId: challenge.challengeId, verificationCode: await latestCode(sessionEmail) });
  const { token } = await authsignal.claimChallenge({ challengeId: challenge.challengeId, userId: sessionUser });

  const created = await authsignal.createSession({ clientId: "web", token });
  assert.match(created.accessToken, /^[\w-]+\.[\w-]+\.[\w-]+$/, "the access token is a JWT");
  assert.match(created.refreshToken, /^[0-9a-f]{64}$/);

  // The access token verifies with the tenant's JWKS alone (RS256, kid), as a gateway does it.
  const [header, payload, signature] = created.accessToken.split(".");
  const { alg, kid } = JSON.parse(Buffer.from(header, "base64url"));
  assert.equal(alg, "RS256");
  const claims = JSON.parse(Buffer.from(payload, "base64url"));
  assert.equal(claims.sub, sessionUser);
  assert.equal(claims.aud, "web");
  const jwks = await (await fetch(`${apiUrl}/client/public/emulator-tenant/.well-known/jwks`)).json();
  const jwk = jwks.keys.find((k) => k.kid === kid);
  assert.ok(jwk, "the token's kid is in the JWKS");
  const verified = crypto.verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), crypto.createPublicKey({ key: jwk, format: "jwk" }), Buffer.from(signature, "base64url"));
  assert.equal(verified, true);

  const valid = await authsignal.validateSession({ accessToken: created.accessToken, clientIds: ["web"] });
  assert.equal(valid.user.userId, sessionUser);
  assert.equal(valid.verificationMethod, "EMAIL_OTP");
  assert.equal(valid.expiresAt, claims.exp, "expiresAt is the token's exp, Unix seconds");

  const refreshed = await authsignal.refreshSession({ refreshToken: created.refreshToken });
  assert.notEqual(refreshed.accessToken, created.accessToken);
  await assert.rejects(authsignal.validateSession({ accessToken: created.accessToken }), (err) => err.statusCode === 400);
  assert.equal((await authsignal.validateSession({ accessToken: refreshed.accessToken })).user.userId, sessionUser);

  await authsignal.revokeSession({ accessToken: refreshed.accessToken });
  await assert.rejects(authsignal.validateSession({ accessToken: refreshed.accessToken }), (err) => {
    assert.equal(err.errorCode, "invalid_request");
    return true;
  });

  const second = await authsignal.createSession({ clientId: "web", token });
  await authsignal.revokeUserSessions({ userId: sessionUser });
  await assert.rejects(authsignal.validateSession({ accessToken: second.accessToken }), (err) => err.statusCode === 400);
});

test("webhook.constructEvent accepts the emulator's webhooks and rejects a tampered one", async () => {
  const hookUser = `${userId}-hooks`;
  await authsignal.enrollVerifiedAuthenticator({ userId: hookUser, attributes: { verificationMethod: "EMAIL_OTP", email: `hooks-${run}@example.com` } });
  let delivery;
  for (let i = 0; i < 100 && !delivery; i++) {
    const { deliveries } = await (await fetch(`${emulator}/emulator/webhooks`)).json();
    delivery = deliveries.find((d) => d.state === "DELIVERED" && JSON.parse(d.body).data.userId === hookUser);
    if (!delivery) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(delivery, "the enrolment was announced");

  const event = authsignal.webhook.constructEvent(delivery.body, delivery.signature);
  assert.equal(event.type, "authenticator.created");
  assert.equal(event.version, 1);
  assert.equal(event.source, "https://authsignal.com");
  assert.equal(event.data.userId, hookUser);
  assert.equal(event.data.verificationMethod, "EMAIL_OTP");

  const tampered = delivery.body.replace(hookUser, `${hookUser}-x`);
  assert.throws(() => authsignal.webhook.constructEvent(tampered, delivery.signature), /Signature mismatch/);
  const other = new Authsignal({ apiSecretKey: "another-tenants-key", apiUrl, retries: 0 });
  assert.throws(() => other.webhook.constructEvent(delivery.body, delivery.signature), /Signature mismatch/);
});

test("CallConnect's startCall and finishCall, with the Call Connect key", async () => {
  // Call Connect is on the emulator's root (the real one on us-connect.authsignal.com), with its own key.
  const callConnect = new CallConnect({ apiSecretKey: process.env.CALL_CONNECT_SECRET, apiUrl: emulator, retries: 0 });
  const referenceId = `call-${run}`;
  const phoneNumber = "+6427123456";
  const started = await callConnect.startCall({ referenceId, phoneNumber });
  assert.equal(started.channel, "WHATSAPP", "a phone number without a channel gets WhatsApp, as in the SDK's own test");
  assert.equal(started.phoneNumber, phoneNumber);
  assert.ok(started.messageId);
  const res = await fetch(`${emulator}/emulator/messages/latest?to=${encodeURIComponent(phoneNumber)}`);
  const message = await res.json();
  assert.equal(message.id, started.messageId);
  assert.match(message.body, new RegExp(`/emulator/calls/${referenceId}`));

  const finished = await callConnect.finishCall({ referenceId, state: "CHALLENGE_SUCCEEDED", payload: { agent: "a1" } });
  assert.equal(finished.success, true);
  const call = await (await fetch(`${emulator}/emulator/calls/${referenceId}`)).json();
  assert.equal(call.state, "CHALLENGE_SUCCEEDED");
  assert.deepEqual(call.payload, { agent: "a1" });

  const wrongKey = new CallConnect({ apiSecretKey: process.env.AUTHSIGNAL_SECRET, apiUrl: emulator, retries: 0 });
  await assert.rejects(wrongKey.startCall({ referenceId, phoneNumber }), (err) => err.statusCode === 401);
});
