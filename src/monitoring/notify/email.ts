import { createTransport } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { EmailSettings } from '../store/types.js';

/** Sends one plain-text e-mail over SMTP (nodemailer); throws on any SMTP failure. */
export async function sendEmail(settings: EmailSettings, message: { subject: string; text: string }): Promise<void> {
  const timeout = settings.timeoutMs ?? 10000;
  const options: SMTPTransport.Options = { url: settings.smtpUrl, connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout };
  const transport = createTransport(options);
  try {
    await transport.sendMail({ from: settings.from, to: settings.to.join(', '), subject: message.subject, text: message.text });
  } finally {
    transport.close();
  }
}
