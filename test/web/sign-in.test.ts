import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { REFRESH_COOKIE, SESSION_COOKIE } from '../../src/core/auth/session.js';
import { accessibilityViolations, browserSkipReason, ensureWebBuild, launchBrowser, screenshot } from './harness.js';
import { startSignInPlatform, type SignInPlatform } from '../helpers/sign-in.js';

// End to end in Chromium: the web UI signs in with the hospital account at a real OpenID Connect
// provider (oidc-provider, its own login and consent pages), shows the person and role, renews
// the session, and signs out at the platform and the provider.

const skip = browserSkipReason();
const LAPTOP = { width: 1366, height: 900 };

/** Completes the provider's login (and consent, the first time) pages as a person would. */
async function signInAtProvider(page: Page, login: string): Promise<void> {
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('correct horse battery staple');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  const consent = page.getByRole('button', { name: 'Continue' });
  await consent.waitFor({ timeout: 5000 }).then(() => consent.click(), () => {});
}

describe('web UI: sign in with the hospital account (OIDC) in Chromium', { skip: skip ?? false }, () => {
  let p: SignInPlatform;
  let browser: Browser;

  before(async () => {
    ensureWebBuild();
    p = await startSignInPlatform();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await p?.close();
  });

  test('sign in, see who and which role, renew the session, sign out at the platform and the provider', async () => {
    const context: BrowserContext = await browser.newContext({ viewport: LAPTOP });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));

    await page.goto(`${p.gateway}/models`);
    const dialog = page.getByTestId('login');
    await dialog.waitFor();
    const hospital = page.getByRole('link', { name: 'Sign in with your hospital account' });
    await hospital.waitFor();
    assert.deepEqual(await accessibilityViolations(page), []);
    await screenshot(page, 'sign-in-choice');

    await hospital.click();
    await page.waitForURL((u) => u.origin === p.idp.issuer);
    await signInAtProvider(page, 'alice');
    await page.waitForURL(`${p.gateway}/models`);
    const who = page.getByTestId('signed-in-user');
    await who.waitFor();
    assert.match(await who.innerText(), /alice\s*clinician/);
    await page.getByText('No models registered yet').waitFor();
    assert.equal(await dialog.count(), 0, 'no login dialog once signed in');
    await screenshot(page, 'signed-in');

    const cookies = await context.cookies(); // all paths: the refresh cookie is on /auth only
    const session = cookies.find((c) => c.name === SESSION_COOKIE)!;
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/');
    const refresh = cookies.find((c) => c.name === REFRESH_COOKIE)!;
    assert.equal(refresh.path, '/auth');
    assert.equal(refresh.httpOnly, true);
    assert.equal(await page.evaluate(() => document.cookie), '', 'page scripts see no session or refresh token');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('xray.apiKey')), null, 'no API key involved');

    // The session cookie ends (as after XRAY_SESSION_TTL_S): the UI renews it at the provider
    // and carries on without showing the login.
    const grants = p.idp.seen.grants.refresh_token ?? 0;
    await context.clearCookies({ name: SESSION_COOKIE });
    const renewed = page.waitForResponse((r) => r.url() === `${p.gateway}/auth/refresh` && r.status() === 200);
    await page.getByRole('link', { name: 'Datasets' }).click();
    await page.getByRole('link', { name: 'Models' }).click();
    await renewed;
    await page.getByText('No models registered yet').waitFor();
    assert.equal(await dialog.count(), 0);
    assert.equal(p.idp.seen.grants.refresh_token, grants + 1);
    assert.ok((await context.cookies(p.gateway)).some((c) => c.name === SESSION_COOKIE && c.value !== session.value), 'a new session cookie');

    // Sign out: cookies cleared here, then the provider's end-session page, back to the platform.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.origin === p.idp.issuer);
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL(`${p.gateway}/`);
    await dialog.waitFor();
    assert.equal(await page.getByTestId('signed-in-user').count(), 0);
    const left = (await context.cookies()).map((c) => c.name);
    assert.ok(!left.includes(SESSION_COOKIE) && !left.includes(REFRESH_COOKIE), `cookies left: ${left.join(', ')}`);
    assert.equal(p.idp.seen.revocations >= 1, true, 'the refresh token was revoked');
    // The provider's session ended too: signing in again asks for the password again.
    await page.getByRole('link', { name: 'Sign in with your hospital account' }).click();
    await page.locator('input[name=login]').waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a person in no mapped group sees a clear refusal page and is not signed in', async () => {
    const context = await browser.newContext({ viewport: LAPTOP });
    const page = await context.newPage();
    await page.goto(`${p.gateway}/`);
    await page.getByRole('link', { name: 'Sign in with your hospital account' }).click();
    await page.waitForURL((u) => u.origin === p.idp.issuer);
    const callback = page.waitForResponse((r) => r.url().startsWith(`${p.gateway}/auth/callback`));
    await signInAtProvider(page, 'visitor');
    assert.equal((await callback).status(), 403);
    await page.getByRole('heading', { name: 'Sign-in refused' }).waitFor();
    assert.match(await page.getByTestId('sign-in-error').innerText(), /visitor is signed in at the identity provider but is in no group that gives access/);
    assert.deepEqual(await accessibilityViolations(page), []);
    await screenshot(page, 'sign-in-refused');
    assert.ok(!(await context.cookies(p.gateway)).some((c) => c.name === SESSION_COOKIE));
    await page.getByRole('link', { name: 'Back to xray-mlops' }).click();
    await page.getByTestId('login').waitFor();
    await context.close();
  });
});
