// `appointments` in TypeScript: the port of plugins/appointments (Rust), the
// appointments-by-country flow (FLOWS.md section 2). One component, deployed as several
// plugins that differ by config `role`:
//
// - `api`: `POST /appointments` validates, stores the appointment (`pending`) in the
//   shared kv bucket and publishes it to `appointment-notifications` with attribute
//   `country`; `GET /appointments/{insuredId}` lists an insured's appointments by date.
// - `processor` (config `country`, `database`, `dialect`): consumes its country's queue,
//   inserts each appointment into `appointment_pe` / `appointment_cl` (idempotently:
//   delivery is at least once), then puts `AppointmentConfirmation` on the bus.
// - `confirmation`: consumes the confirmation queue and marks the appointment
//   `completed`.

import {
  Batch,
  Failure,
  QueueMessage,
  Request,
  Response,
  config,
  kv,
  log,
  messaging,
  onHttp,
  onQueue,
  sql,
} from "orquesta";

const BUCKET = "appointments";
const TOPIC = "appointment-notifications";
const BUS = "appointment-events-bus";
const COUNTRIES = ["PE", "CL"];

type Json = Record<string, unknown>;

const role = () => config.get("role", "");

const badRequest = (message: string) => Response.json({ error: "ValidationError", message }, 400);

// ---- api ------------------------------------------------------------------------------

onHttp((req: Request) => {
  if (role() !== "api") {
    throw new Failure("UnsupportedEvent", `role ${JSON.stringify(role())} does not take this event`);
  }
  try {
    if (req.method === "POST") return create(req.body);
    if (req.method === "GET") return list(req.params.insuredId ?? "");
    return Response.json({ error: "MethodNotAllowed", message: req.method }, 405);
  } catch (e) {
    if (e instanceof Failure) return Response.json({ error: e.error, message: e.cause }, 500);
    throw e;
  }
});

/** Five digits, as the seed's insured ids are. */
const validInsured = (id: unknown): id is string => typeof id === "string" && /^[0-9]{5}$/.test(id);

/** `YYYY-MM-DDTHH:MM` or with seconds and zone: enough shape to sort and to refuse junk. */
function validDate(d: unknown): d is string {
  if (typeof d !== "string" || d.length < 16 || d.length > 30) return false;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(d);
  if (!m) return false;
  const [month, day, hour, minute] = [m[2], m[3], m[4], m[5]].map(Number);
  return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour < 24 && minute < 60;
}

function uuid(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function create(body: Uint8Array): Response {
  let doc: Json;
  try {
    doc = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return badRequest("the body is not JSON");
  }
  if (typeof doc !== "object" || doc === null) return badRequest("the body is not JSON");
  const { insuredId, dateSchedule, country } = doc;
  if (!validInsured(insuredId)) return badRequest("insuredId must be 5 digits");
  if (!validDate(dateSchedule)) {
    return badRequest("dateSchedule must be a date and time like 2026-12-01T09:30");
  }
  if (typeof country !== "string" || !COUNTRIES.includes(country)) {
    return badRequest("country must be PE or CL");
  }
  const id = uuid();
  const appointment = { appointmentId: id, insuredId, dateSchedule, country, status: "pending" };
  // Keyed by insured and date, so a prefix listing comes back in date order.
  const key = `appt:${insuredId}:${dateSchedule}:${id}`;
  kv.setJson(BUCKET, key, appointment);
  kv.set(BUCKET, `id:${id}`, key);
  messaging.publish(TOPIC, appointment, "AppointmentCreated", [["country", country]]);
  return Response.json(appointment, 201);
}

function list(insured: string): Response {
  if (!validInsured(insured)) return badRequest("insuredId must be 5 digits");
  const items: unknown[] = [];
  let cursor: string | undefined;
  do {
    const page = kv.listKeys(BUCKET, `appt:${insured}:`, cursor, 500);
    for (const key of page.keys) {
      const text = kv.getText(BUCKET, key);
      if (text !== undefined) {
        try {
          items.push(JSON.parse(text));
        } catch {
          items.push(null);
        }
      }
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  return Response.json({ insuredId: insured, items });
}

// ---- queue consumers ------------------------------------------------------------------

onQueue((messages: QueueMessage[]) => {
  const step = role() === "processor" ? processMessage : role() === "confirmation" ? confirm : undefined;
  if (!step) throw new Failure("UnsupportedEvent", `role ${JSON.stringify(role())} does not take this event`);
  // Runs `step` on each message; the ones that fail come back (a partial batch failure).
  const failed: string[] = [];
  for (const m of messages) {
    try {
      step(m);
    } catch (e) {
      const error = e instanceof Failure ? `${e.error}: ${e.cause}` : String(e);
      log.warn("appointment message failed", { id: m.id, error });
      failed.push(m.id);
    }
  }
  return new Batch(failed);
});

function parse(text: string): Json {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Failure("InvalidMessage", String(e));
  }
}

/** The appointment a country queue's message carries: SNS's notification document's
 * `Message` (the seed's subscriptions set no `RawMessageDelivery`), or with raw message
 * delivery the appointment itself. */
function appointment(body: string): Json {
  const doc = parse(body);
  if (doc.Type === "Notification" && typeof doc.Message === "string") return parse(doc.Message);
  return doc;
}

function processMessage(m: QueueMessage): void {
  const country = config.get("country", "");
  const database = config.get("database", country.toLowerCase());
  const dialect = config.get("dialect", "sqlite");
  const doc = appointment(m.body);
  if (doc.country !== country) {
    throw new Failure("WrongCountry", `a ${JSON.stringify(doc.country)} appointment reached the ${country} processor`);
  }
  const table = `appointment_${country.toLowerCase()}`;
  const create =
    `CREATE TABLE IF NOT EXISTS ${table} (appointment_id VARCHAR(64) PRIMARY KEY, ` +
    "insured_id VARCHAR(16) NOT NULL, date_schedule VARCHAR(32) NOT NULL, " +
    "country VARCHAR(2) NOT NULL, status VARCHAR(16) NOT NULL)";
  // Two batches creating the table at once on PostgreSQL: the later one fails on the
  // catalog's unique index once the first commits, and then sees the table.
  try {
    sql.execute(database, create);
  } catch {
    sql.execute(database, create);
  }
  const [insert, tail] =
    dialect === "mysql" || dialect === "mariadb"
      ? ["INSERT IGNORE INTO", "(?, ?, ?, ?, ?)"]
      : dialect === "postgres"
        ? ["INSERT INTO", "($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"]
        : ["INSERT INTO", "(?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING"];
  const text = (k: string) => (typeof doc[k] === "string" ? (doc[k] as string) : "");
  sql.execute(
    database,
    `${insert} ${table} (appointment_id, insured_id, date_schedule, country, status) VALUES ${tail}`,
    [text("appointmentId"), text("insuredId"), text("dateSchedule"), text("country"), "scheduled"],
  );
  messaging.putEvent(BUS, "appointment.service", "AppointmentConfirmation", {
    appointmentId: doc.appointmentId,
    insuredId: doc.insuredId,
    country,
  });
}

function confirm(m: QueueMessage): void {
  const envelope = parse(m.body);
  const detail = (envelope.detail ?? {}) as Json;
  const id = typeof detail.appointmentId === "string" ? detail.appointmentId : "";
  const key = kv.getText(BUCKET, `id:${id}`);
  if (key === undefined) throw new Failure("UnknownAppointment", `no appointment ${id}`);
  // Compare-and-swap: a concurrent writer makes this retry, not lose an update.
  for (;;) {
    const entry = kv.get(BUCKET, key);
    if (!entry) throw new Failure("UnknownAppointment", `no appointment ${id}`);
    let doc: Json;
    try {
      doc = JSON.parse(new TextDecoder().decode(entry.value));
    } catch (e) {
      throw new Failure("CorruptRecord", String(e));
    }
    doc.status = "completed";
    if (kv.compareAndSwap(BUCKET, key, entry.version, JSON.stringify(doc)) !== undefined) return;
  }
}
