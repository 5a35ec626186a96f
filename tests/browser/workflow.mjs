// The portal's workflow end to end in real Chromium, through its forms only: a partner and
// the partner administrator in two browser contexts (registration with a refused field,
// sign-in, CA bundle, partner certificate, FTM approved and trusted, a second FTM rejected
// with a reason), a keyboard-only sign-in with visible focus, French and Arabic (right to
// left), phone width without horizontal scrolling, and axe-core on every page visited:
// any `serious` or `critical` violation fails the run.
//
// Run by tests/tests/browser.rs (`cargo test -p pmp-e2e --test browser`), which starts the
// services and the portal and passes everything through the environment:
//   PORTAL_URL              the portal, e.g. http://127.0.0.1:41234
//   ADMIN_PASSWORD          password of the platform administrator `admin`
//   ORG                     organisation name the certificates carry
//   CA_BUNDLE_FILE          the FTM domain's root and intermediate CA (PEM)
//   PARTNER_CERT_DER_FILE   the partner certificate (DER)
//   CHIP_CERT_PEM_FILE      the chip certificate of the FTM that gets approved (PEM)
//   CHIP2_CERT_PEM_FILE     the chip certificate of the FTM that gets rejected (PEM)
//   SCREENSHOT_DIR          where the PNG screenshots go (created if missing)
//   CHROMIUM                the browser (default /usr/bin/chromium, Debian's package)
// Prints one line per step; exits 1 with the reason (and failure screenshots) on the first
// failed step, or at the end when axe found serious or critical violations.
//
// docs/screenshots/ holds a curated copy of some of the screenshots for the README,
// compressed with `pngquant --quality=70-90 --strip`; refresh it by hand from
// target/portal-screenshots/ when the pages change.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** A failed expectation: its message is the whole explanation. */
class Failure extends Error {}

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Failure(`environment variable ${name} is not set (see the top of workflow.mjs)`);
  }
  return value;
}

const TIMEOUT_MS = 15_000;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 740 };
const PARTNER = { id: 'acme-ftm', password: 'a-long-password-1' };
const FIRST_FTM = { make: 'ACME Secure', model: 'S1' };
const SECOND_FTM = { make: 'ACME Secure', model: 'R2' };
const REJECT_REASON = 'The chip certificate lacks the FIPS 140-3 profile.';

let env;
let catalogues;
let axeSource;
let browser;
const pages = {};
let stepNumber = 0;
const accessibility = [];

// ---------------------------------------------------------------------------------------
// Helpers

/** The text of catalogue `key` in `language` (`eng`, `fra`, `ara`), `{name}`s replaced. */
function t(key, values = {}, language = 'eng') {
  const text = catalogues[language][key];
  if (text === undefined) {
    throw new Failure(`no text ${key} in services/portal/locales/${language}.json`);
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? `{${name}}`));
}

async function step(name, body) {
  stepNumber += 1;
  const label = `${String(stepNumber).padStart(2)}. ${name}`;
  const started = Date.now();
  try {
    await body();
  } catch (error) {
    console.log(`FAIL ${label}`);
    throw error;
  }
  console.log(`ok   ${label} (${Date.now() - started} ms)`);
}

function url(pathAndQuery) {
  return new URL(pathAndQuery, env.portal).toString();
}

/** Where the page is, relative to the portal (path and query). */
function where(page) {
  const current = new URL(page.url());
  return current.pathname + current.search;
}

/** Opens `target` and expects HTTP `status`. */
async function open(page, target, status = 200) {
  const response = await page.goto(url(target), { waitUntil: 'load' });
  expectStatus(page, response, status, `GET ${target}`);
}

function expectStatus(page, response, status, what) {
  if (!response) {
    throw new Failure(`${what}: no response`);
  }
  if (response.status() !== status) {
    throw new Failure(
      `${what}: HTTP ${response.status()} at ${where(page)}, expected ${status}`,
    );
  }
}

/** Triggers a form submission with `action` and waits for the page it leads to. */
async function submit(page, action, status = 200, what = 'form submission') {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load', timeout: TIMEOUT_MS * 2 }),
    action(),
  ]);
  expectStatus(page, response, status, what);
}

/** Clicks the button named `name` (inside `scope`) and waits for the next page. */
async function press(scope, page, name, status = 200) {
  const button = scope.getByRole('button', { name, exact: true });
  await submit(page, () => button.click(), status, `"${name}"`);
}

async function mainText(page) {
  const text = await page.locator('main').innerText().catch(() => '(no main element)');
  return text.length > 1500 ? `${text.slice(0, 1500)}…` : text;
}

/** Waits until `locator` is visible; fails with `what` and the page's text otherwise. */
async function expectVisible(page, locator, what) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: TIMEOUT_MS });
  } catch {
    throw new Failure(
      `${what} is not shown at ${where(page)}.\n--- page text ---\n${await mainText(page)}`,
    );
  }
}

/** Expects `text` in the page's `main` (or `scope`). */
async function expectText(page, text, scope = page.locator('main')) {
  await expectVisible(page, scope.getByText(text, { exact: false }), JSON.stringify(text));
}

async function expectPath(page, expected) {
  const actual = where(page);
  const matches = expected instanceof RegExp ? expected.test(actual) : actual === expected;
  if (!matches) {
    throw new Failure(`the browser is at ${actual}, expected ${expected}`);
  }
}

async function expectHeading(page, text) {
  const heading = (await page.locator('h1').innerText()).trim();
  if (heading !== text) {
    throw new Failure(`the page heading at ${where(page)} is "${heading}", expected "${text}"`);
  }
}

async function screenshot(page, name) {
  await page.screenshot({ path: path.join(env.screenshots, `${name}.png`), fullPage: true });
}

/** Runs axe-core on the page; records (and prints) every violation. */
async function audit(page, name) {
  const loaded = await page.evaluate(() => typeof window.axe === 'object');
  if (!loaded) {
    // Needs the context's bypassCSP: the portal's policy allows no script at all.
    await page.addScriptTag({ content: axeSource });
  }
  const { passes, violations } = await page.evaluate(async () => {
    const results = await window.axe.run(document, { resultTypes: ['violations'] });
    const violations = results.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      helpUrl: violation.helpUrl,
      nodes: violation.nodes.map((node) => ({
        target: node.target.join(' '),
        summary: node.failureSummary,
      })),
    }));
    return { passes: results.passes.length, violations };
  });
  if (passes === 0) {
    throw new Failure(`axe-core checked nothing on ${name} (${where(page)}): did it run?`);
  }
  accessibility.push({ page: name, at: where(page), passes, violations });
  for (const violation of violations) {
    const severe = ['serious', 'critical'].includes(violation.impact);
    console.log(
      `     axe ${severe ? 'VIOLATION' : 'note'} on ${name}: ${violation.id} (${violation.impact}) ${violation.help}`,
    );
    if (severe) {
      for (const node of violation.nodes) {
        console.log(`         at ${node.target}`);
      }
    }
  }
}

/** Fails when the page scrolls sideways. */
async function expectNoHorizontalScroll(page, name) {
  const layout = await page.evaluate(() => {
    const root = document.documentElement;
    const width = root.clientWidth;
    const wide = [...document.querySelectorAll('body *')]
      .filter((element) => {
        const box = element.getBoundingClientRect();
        return box.width > 0 && (box.right > width + 1 || box.left < -1);
      })
      .slice(0, 5)
      .map((element) => {
        const box = element.getBoundingClientRect();
        const id = element.id ? `#${element.id}` : '';
        const classes = element.className && typeof element.className === 'string'
          ? `.${element.className.trim().split(/\s+/).join('.')}`
          : '';
        return `${element.tagName.toLowerCase()}${id}${classes} [${Math.round(box.left)}, ${Math.round(box.right)}]`;
      });
    return { scrollWidth: root.scrollWidth, clientWidth: width, wide };
  });
  if (layout.scrollWidth > layout.clientWidth + 1) {
    throw new Failure(
      `${name} (${where(page)}) scrolls sideways at ${PHONE.width} px: scrollWidth ` +
        `${layout.scrollWidth} > clientWidth ${layout.clientWidth}; wide elements: ` +
        `${layout.wide.join('; ') || 'none found'}`,
    );
  }
}

/** The focused element: tag, id, whether it matches :focus-visible, its outline, its box. */
async function focused(page) {
  return page.evaluate(() => {
    const element = document.activeElement;
    if (!element || element === document.body) {
      return { tag: 'body' };
    }
    const style = getComputedStyle(element);
    const box = element.getBoundingClientRect();
    return {
      tag: element.tagName.toLowerCase(),
      id: element.id,
      className: typeof element.className === 'string' ? element.className : '',
      focusVisible: element.matches(':focus-visible'),
      outlineStyle: style.outlineStyle,
      outlineWidth: parseFloat(style.outlineWidth) || 0,
      top: box.top,
      bottom: box.bottom,
    };
  });
}

function expectVisibleFocus(state, what) {
  if (!state.focusVisible || state.outlineStyle === 'none' || state.outlineWidth < 1) {
    throw new Failure(
      `${what} has no visible focus style: :focus-visible=${state.focusVisible}, ` +
        `outline ${state.outlineStyle} ${state.outlineWidth}px`,
    );
  }
}

async function signIn(page, username, password) {
  await open(page, '/sign-in');
  await page.getByLabel(t('field.username'), { exact: true }).fill(username);
  await page.getByLabel(t('field.password'), { exact: true }).fill(password);
  await press(page.locator('main'), page, t('sign_in.submit'));
  await expectPath(page, '/home');
}

/** Chooses `file` in the certificate file picker of `scope` and submits with `button`. */
async function uploadFile(page, scope, file, button, status = 200) {
  await scope.getByLabel(t('certificate.file'), { exact: true }).setInputFiles(file);
  await press(scope, page, button, status);
}

/** Creates an FTM through the "new FTM" form; returns its page's path. */
async function createFtm(page, { make, model }) {
  await open(page, '/ftms');
  const form = page.locator('section[aria-labelledby="new-ftm"]');
  await form.getByLabel(t('field.make'), { exact: true }).fill(make);
  await form.getByLabel(t('field.model'), { exact: true }).fill(model);
  await press(form, page, t('ftm.create'));
  await expectPath(page, /^\/ftms\/[^/?]+\?notice=ftm_created$/);
  await expectText(page, t('notice.ftm_created'));
  await expectText(page, t('ftm_status.pending_cert_upload'));
  return new URL(page.url()).pathname;
}

/** The admin opens the FTM `ftm` from the review queue (the link of its row). */
async function openFromQueue(page, ftmPath, { make, model }) {
  await open(page, '/admin/review');
  const row = page.locator('tbody tr', { hasText: model });
  await expectVisible(page, row, `the queue row of ${make} ${model}`);
  await submit(page, () => row.getByRole('link', { name: make }).click(), 200, `link ${make}`);
  await expectPath(page, ftmPath);
}

// ---------------------------------------------------------------------------------------
// The run

async function run() {
  env = {
    portal: required('PORTAL_URL'),
    adminPassword: required('ADMIN_PASSWORD'),
    org: required('ORG'),
    caBundle: required('CA_BUNDLE_FILE'),
    partnerDer: required('PARTNER_CERT_DER_FILE'),
    chip: required('CHIP_CERT_PEM_FILE'),
    chip2: required('CHIP2_CERT_PEM_FILE'),
    screenshots: required('SCREENSHOT_DIR'),
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  };
  for (const file of [env.caBundle, env.partnerDer, env.chip, env.chip2]) {
    if (!existsSync(file)) {
      throw new Failure(`input file ${file} does not exist`);
    }
  }
  if (!existsSync(env.chromium)) {
    throw new Failure(
      `Chromium is not at ${env.chromium}: install Debian's package (apt-get install chromium) ` +
        'or point CHROMIUM at a Chromium or Chrome binary',
    );
  }
  await mkdir(env.screenshots, { recursive: true });
  for (const stale of await readdir(env.screenshots)) {
    if (/^failure-.*\.png$/.test(stale)) {
      await rm(path.join(env.screenshots, stale));
    }
  }
  const locales = path.resolve(here, '../../services/portal/locales');
  catalogues = {};
  for (const language of ['eng', 'fra', 'ara']) {
    catalogues[language] = JSON.parse(await readFile(path.join(locales, `${language}.json`), 'utf8'));
  }
  axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');

  browser = await chromium.launch({
    executablePath: env.chromium,
    headless: true,
    // CI runs as root, where Chromium's sandbox cannot start.
    args: ['--no-sandbox'],
  });
  const context = async () => {
    // bypassCSP: axe-core is injected as a script, which the portal's policy forbids.
    const created = await browser.newContext({
      bypassCSP: true,
      locale: 'en-US',
      viewport: DESKTOP,
      acceptDownloads: true,
    });
    created.setDefaultTimeout(TIMEOUT_MS);
    created.setDefaultNavigationTimeout(TIMEOUT_MS * 2);
    return created.newPage();
  };
  pages.partner = await context();
  pages.admin = await context();
  pages.visitor = await context();
  const { partner, admin, visitor } = pages;
  let firstFtm;
  let secondFtm;

  await step('the style sheet applies under the real Content-Security-Policy', async () => {
    const strict = await browser.newContext({ locale: 'en-US', viewport: DESKTOP });
    const page = await strict.newPage();
    const refused = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) {
        refused.push(message.text());
      }
    });
    await open(page, '/sign-in');
    const background = await page
      .locator('header.top')
      .evaluate((header) => getComputedStyle(header).backgroundColor);
    await strict.close();
    if (background !== 'rgb(8, 69, 127)') {
      throw new Failure(`the header's background is ${background}: portal.css did not apply`);
    }
    if (refused.length > 0) {
      throw new Failure(`the browser refused resources:\n${refused.join('\n')}`);
    }
  });

  await step('sign-in page', async () => {
    await open(partner, '/');
    await expectPath(partner, '/sign-in');
    await expectHeading(partner, t('sign_in.title'));
    await screenshot(partner, '01-sign-in');
    await audit(partner, 'sign-in');
  });

  await step('registration: a refused field is explained next to it, values kept', async () => {
    const navigation = partner.getByRole('navigation', { name: t('nav.main'), exact: true });
    await submit(partner, () => navigation.getByRole('link', { name: t('nav.register'), exact: true }).click());
    await expectPath(partner, '/register');
    await audit(partner, 'register');
    const label = (key) => partner.getByLabel(t(key), { exact: true });
    await label('field.partner_id').fill(PARTNER.id);
    await label('field.password').fill(PARTNER.password);
    await label('field.first_name').fill('Ada');
    await label('field.last_name').fill('Lovelace');
    await label('field.email').fill('ada at acme');
    await label('field.phone').fill('+91 80 5550 0100');
    await label('field.organization_name').fill(env.org);
    await label('field.partner_type').selectOption('FTM_Provider');
    await label('field.address').fill('1 MG Road, Bengaluru');
    await label('field.lang_code').selectOption('eng');
    await press(partner.locator('main'), partner, t('register.submit'), 400);
    const error = partner.locator('#field-email-error');
    await expectVisible(partner, error, 'the e-mail error');
    if ((await error.innerText()).trim() !== t('reason.PMS_PRT_012')) {
      throw new Failure(`the e-mail error reads "${await error.innerText()}"`);
    }
    const email = label('field.email');
    if ((await email.getAttribute('aria-invalid')) !== 'true') {
      throw new Failure('the e-mail field is not marked aria-invalid');
    }
    if ((await label('field.first_name').inputValue()) !== 'Ada') {
      throw new Failure('the typed first name was not kept');
    }
    await screenshot(partner, '02-register-errors');
    await audit(partner, 'register-with-errors');
  });

  await step('registration succeeds once the e-mail address is corrected', async () => {
    const label = (key) => partner.getByLabel(t(key), { exact: true });
    await label('field.email').fill('ada@acme.example');
    await label('field.password').fill(PARTNER.password);
    await press(partner.locator('main'), partner, t('register.submit'));
    await expectPath(partner, '/sign-in?notice=registered');
    await expectText(partner, t('notice.registered'));
  });

  await step('partner signs in and is asked for a partner certificate', async () => {
    await signIn(partner, PARTNER.id, PARTNER.password);
    await expectText(partner, t('partner_status.in_progress'), partner.locator('strong.status'));
    await expectText(partner, t('home.next_certificate'));
  });

  await step('admin signs in with the keyboard only, focus always visible', async () => {
    await open(admin, '/sign-in');
    await admin.keyboard.press('Tab');
    const skip = await focused(admin);
    if (skip.tag !== 'a' || skip.className !== 'skip') {
      throw new Failure(`the first Tab focuses ${skip.tag}#${skip.id}.${skip.className}, not the skip link`);
    }
    expectVisibleFocus(skip, 'the skip link');
    if (skip.top < 0 || skip.bottom > DESKTOP.height) {
      throw new Failure(`the focused skip link is off screen (top ${skip.top})`);
    }
    await admin.keyboard.press('Enter');
    await admin.keyboard.press('Tab');
    const username = await focused(admin);
    if (username.id !== 'field-username') {
      throw new Failure(`Tab after "skip to content" focuses ${username.tag}#${username.id}, not the user name`);
    }
    expectVisibleFocus(username, 'the user name field');
    await admin.keyboard.type('admin');
    await admin.keyboard.press('Tab');
    const password = await focused(admin);
    if (password.id !== 'field-password') {
      throw new Failure(`Tab from the user name focuses ${password.tag}#${password.id}, not the password`);
    }
    expectVisibleFocus(password, 'the password field');
    await admin.keyboard.type(env.adminPassword);
    await submit(admin, () => admin.keyboard.press('Enter'), 200, 'Enter in the password field');
    await expectPath(admin, '/home');
    await expectHeading(admin, t('home.admin_title'));
  });

  await step('admin uploads the FTM CA bundle with the file picker', async () => {
    await open(admin, '/admin/ca');
    const form = admin.locator('section[aria-labelledby="upload-ca"]');
    await form.getByLabel(t('field.partner_domain'), { exact: true }).selectOption('FTM');
    await uploadFile(admin, form, env.caBundle, t('ca.submit'));
    const results = admin.locator('section[aria-labelledby="upload-results"]');
    await expectText(admin, t('ca.result.success'), results);
    for (const name of [`${env.org} Dev Root CA`, `${env.org} Dev Intermediate CA`]) {
      const row = results.locator('tbody tr', { hasText: name });
      await expectVisible(admin, row, `the result row of ${name}`);
      await expectVisible(
        admin,
        row.getByRole('link', { name: t('ca.outcome.stored'), exact: true }),
        `"${t('ca.outcome.stored')}" for ${name}`,
      );
    }
    await screenshot(admin, '06-admin-trust-store');
    await audit(admin, 'admin CA (upload results)');
  });

  await step('partner uploads the partner certificate as a DER file', async () => {
    await open(partner, '/certificate');
    await expectText(partner, t('certificate.none'));
    await audit(partner, 'certificate (none yet)');
    const form = partner.locator('form[action="/certificate"]');
    await form.getByLabel(t('field.partner_domain'), { exact: true }).selectOption('FTM');
    await uploadFile(partner, form, env.partnerDer, t('certificate.submit'));
    await expectPath(partner, '/certificate?notice=certificate_uploaded');
    await expectText(partner, t('notice.certificate_uploaded'));
    for (const key of ['certificate.download_ca_signed', 'certificate.download_platform_signed']) {
      await expectVisible(partner, partner.getByRole('link', { name: t(key), exact: true }), `link "${t(key)}"`);
    }
    const downloading = partner.waitForEvent('download');
    await partner.getByRole('link', { name: t('certificate.download_platform_signed'), exact: true }).click();
    const download = await downloading;
    const pem = await readFile(await download.path(), 'utf8');
    if (!pem.startsWith('-----BEGIN CERTIFICATE-----')) {
      throw new Failure(`the platform-signed download is not a PEM certificate: ${pem.slice(0, 80)}`);
    }
    if (download.suggestedFilename() !== `${PARTNER.id}-platform-signed.pem`) {
      throw new Failure(`the download is named ${download.suggestedFilename()}`);
    }
    await audit(partner, 'certificate');
  });

  await step('partner home shows the account Active', async () => {
    await open(partner, '/home');
    await expectText(partner, t('partner_status.active'), partner.locator('strong.status'));
    await expectText(partner, t('home.next_ftms'));
    await screenshot(partner, '03-partner-home');
    await audit(partner, 'home');
  });

  await step('partner creates an FTM (make and model)', async () => {
    await open(partner, '/ftms');
    await audit(partner, 'FTMs (empty)');
    firstFtm = await createFtm(partner, FIRST_FTM);
  });

  await step('partner uploads the chip certificate as a PEM file', async () => {
    const form = partner.locator('section[aria-labelledby="upload-chip"]');
    await uploadFile(partner, form, env.chip, t('certificate.submit'));
    await expectPath(partner, `${firstFtm}?notice=ftm_certificate_uploaded`);
    await expectText(partner, t('notice.ftm_certificate_uploaded'));
    await expectText(partner, t('ftm_status.pending_approval'));
    await expectText(partner, `CN=${env.org} FTM Chip`);
    if ((await partner.getByRole('button', { name: t('ftm.approve') }).count()) !== 0) {
      throw new Failure('a partner is offered the Approve button');
    }
    await audit(partner, 'FTM detail (waiting for approval)');
  });

  await step('admin approves the FTM from the review queue', async () => {
    await open(admin, '/home');
    await expectText(admin, t('home.pending_reviews', { count: 1 }));
    await audit(admin, 'admin home');
    await open(admin, '/admin/review');
    await screenshot(admin, '05-admin-review');
    await audit(admin, 'admin review queue');
    await openFromQueue(admin, firstFtm, FIRST_FTM);
    await expectText(admin, `CN=${env.org} Dev Intermediate CA`);
    await audit(admin, 'FTM detail (admin review)');
    await press(admin.locator('section[aria-labelledby="review"]'), admin, t('ftm.approve'));
    await expectPath(admin, `${firstFtm}?notice=ftm_approved`);
    await expectText(admin, t('notice.ftm_approved'));
    await expectText(admin, t('verify.trusted'), admin.locator('p.verdict.trusted'));
  });

  await step('partner sees the FTM approved and its chip certificate trusted', async () => {
    await open(partner, firstFtm);
    await expectText(partner, t('ftm_status.approved'));
    await expectText(partner, t('verify.trusted'), partner.locator('p.verdict.trusted'));
    await expectVisible(
      partner,
      partner.getByRole('link', { name: t('certificate.download'), exact: true }),
      'the chip certificate download link',
    );
    await screenshot(partner, '04-ftm-trusted');
    await audit(partner, 'FTM detail (approved)');
  });

  await step('the verify page trusts the chip certificate', async () => {
    await open(partner, '/verify');
    await audit(partner, 'verify');
    const form = partner.locator('form[action="/verify"]');
    await form.getByLabel(t('field.partner_domain'), { exact: true }).selectOption('FTM');
    await uploadFile(partner, form, env.chip, t('verify.submit'));
    const verdict = partner.locator('section[aria-labelledby="verdict"]');
    await expectText(partner, t('verify.trusted'), verdict);
    await expectText(partner, `CN=${env.org} Dev Root CA`, verdict.locator('ol.chain'));
    await screenshot(partner, '07-verify-result');
    await audit(partner, 'verify result');
  });

  await step('a second FTM: created, chip uploaded, rejected with a reason', async () => {
    secondFtm = await createFtm(partner, SECOND_FTM);
    const form = partner.locator('section[aria-labelledby="upload-chip"]');
    await uploadFile(partner, form, env.chip2, t('certificate.submit'));
    await expectText(partner, t('ftm_status.pending_approval'));

    await openFromQueue(admin, secondFtm, SECOND_FTM);
    const review = admin.locator('section[aria-labelledby="review"]');
    await review.getByLabel(t('field.reject_reason'), { exact: true }).fill(REJECT_REASON);
    await press(review, admin, t('ftm.reject'));
    await expectPath(admin, `${secondFtm}?notice=ftm_rejected`);
    await expectText(admin, t('notice.ftm_rejected'));
  });

  await step('partner sees "Rejected" and the reason', async () => {
    await open(partner, secondFtm);
    await expectText(partner, t('ftm_status.rejected'));
    await expectText(partner, REJECT_REASON);
    await screenshot(partner, '08-ftm-rejected');
    await audit(partner, 'FTM detail (rejected)');
    await open(partner, '/ftms');
    await expectText(partner, t('list.total', { count: 2 }));
    await audit(partner, 'FTMs (list)');
  });

  await step('admin pages: partners (the partner is Active), FTMs, trust store', async () => {
    await open(admin, '/admin/partners');
    const row = admin.locator('tbody tr', { hasText: PARTNER.id });
    await expectVisible(admin, row, `the row of ${PARTNER.id}`);
    await expectText(admin, t('partner_status.active'), row);
    await audit(admin, 'admin partners');
    await open(admin, '/ftms');
    await expectText(admin, t('list.total', { count: 2 }));
    await audit(admin, 'FTMs (admin, every filter)');
    await open(admin, '/admin/ca');
    await audit(admin, 'admin CA (list)');
  });

  await step('French: the language link switches the pages to French', async () => {
    await open(visitor, '/sign-in');
    await submit(visitor, () => visitor.getByRole('link', { name: 'Français', exact: true }).click());
    await expectPath(visitor, '/sign-in');
    await expectHeading(visitor, t('sign_in.title', {}, 'fra'));
    const lang = await visitor.locator('html').getAttribute('lang');
    if (lang !== 'fr') {
      throw new Failure(`<html lang="${lang}"> on the French page`);
    }
    await expectText(visitor, t('field.password', {}, 'fra'));
    await open(visitor, '/register');
    await expectHeading(visitor, t('register.title', {}, 'fra'));
    await audit(visitor, 'register (French)');
  });

  await step('Arabic: right to left, mirrored layout', async () => {
    await submit(visitor, () => visitor.getByRole('link', { name: 'العربية', exact: true }).click());
    await expectPath(visitor, '/register');
    const html = visitor.locator('html');
    const [dir, lang] = [await html.getAttribute('dir'), await html.getAttribute('lang')];
    if (dir !== 'rtl' || lang !== 'ar') {
      throw new Failure(`<html dir="${dir}" lang="${lang}">, expected dir="rtl" lang="ar"`);
    }
    const direction = await visitor.locator('main').evaluate((main) => getComputedStyle(main).direction);
    if (direction !== 'rtl') {
      throw new Failure(`the computed direction of main is ${direction}`);
    }
    await expectHeading(visitor, t('register.title', {}, 'ara'));
    // The brand, first in the header, sits on the right.
    const brand = await visitor.locator('header.top .brand').boundingBox();
    if (!brand || brand.x < DESKTOP.width / 2) {
      throw new Failure(`the brand is at x=${brand?.x}: the header is not mirrored`);
    }
    await screenshot(visitor, '09-arabic-register');
    await audit(visitor, 'register (Arabic)');
  });

  await step(`phone width (${PHONE.width}x${PHONE.height}): no horizontal scrolling`, async () => {
    const checks = [
      [visitor, ['/register', '/sign-in']],
      [partner, ['/home', '/certificate', '/ftms', firstFtm, secondFtm, '/verify']],
      [admin, ['/home', '/admin/review', '/admin/ca', '/admin/partners', firstFtm]],
    ];
    for (const [page, targets] of checks) {
      await page.setViewportSize(PHONE);
      for (const target of targets) {
        await open(page, target);
        await expectNoHorizontalScroll(page, target);
      }
    }
    await open(visitor, '/register');
    await screenshot(visitor, '11-phone-arabic-register');
    await open(partner, '/home');
    await screenshot(partner, '10-phone-home');
  });

  await step('axe-core: no serious or critical violation on any page', async () => {
    const severe = [];
    for (const { page, at, passes, violations } of accessibility) {
      const counts = {};
      for (const violation of violations) {
        counts[violation.impact] = (counts[violation.impact] || 0) + 1;
        if (['serious', 'critical'].includes(violation.impact)) {
          severe.push({ page, at, violation });
        }
      }
      const summary = Object.entries(counts).map(([impact, count]) => `${count} ${impact}`);
      console.log(
        `     axe ${page} (${at}): ${passes} rules passed, ${summary.join(', ') || 'no violations'}`,
      );
    }
    if (severe.length > 0) {
      const lines = severe.flatMap(({ page, at, violation }) => [
        `${page} (${at}): ${violation.id} [${violation.impact}] ${violation.help}`,
        `    ${violation.helpUrl}`,
        ...violation.nodes.map((node) => `    at ${node.target}: ${node.summary.replace(/\n/g, ' ')}`),
      ]);
      throw new Failure(`axe-core found ${severe.length} serious or critical violation(s):\n${lines.join('\n')}`);
    }
  });
}

async function failureScreenshots() {
  if (!env?.screenshots) {
    return;
  }
  for (const [name, page] of Object.entries(pages)) {
    const file = path.join(env.screenshots, `failure-${name}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true });
      console.log(`     ${name} was at ${where(page)}; screenshot ${file}`);
    } catch {
      // The page may be gone with the browser.
    }
  }
}

const started = Date.now();
let exitCode = 0;
try {
  await run();
  console.log(`browser workflow passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  exitCode = 1;
  console.error(`\nbrowser workflow failed: ${error instanceof Failure ? error.message : error.stack}`);
  await failureScreenshots();
} finally {
  await browser?.close().catch(() => {});
}
process.exit(exitCode);
