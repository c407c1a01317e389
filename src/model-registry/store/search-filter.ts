import { AppError } from '../../core/errors.js';

/**
 * MLflow's search DSL: `metrics.auc > 0.9 and params.model = 'resnet' and tags."my key" LIKE 'a%'
 * and attributes.status = 'FINISHED' and datasets.name IN ('chest-xray')`, clauses joined by AND
 * (MLflow has no OR), and order_by terms like `metrics.auc DESC`. Parsed here once; the stores turn
 * the clauses into SQL.
 */

export type EntityType = 'metric' | 'param' | 'tag' | 'attribute' | 'dataset';
export type Comparator = '=' | '!=' | '>' | '>=' | '<' | '<=' | 'LIKE' | 'ILIKE' | 'IN' | 'NOT IN';

export interface FilterClause {
  type: EntityType;
  key: string;
  comparator: Comparator;
  value: number | string | string[];
}

export interface OrderClause {
  type: Exclude<EntityType, 'dataset'>;
  key: string;
  ascending: boolean;
}

/** What a search accepts: the attributes that may appear and how each compares. */
export interface FilterGrammar {
  /** attribute name (lower case, after aliasing) → 'string' | 'number'. */
  attributes: Record<string, 'string' | 'number'>;
  /** alternative spellings → canonical attribute name. */
  attributeAliases?: Record<string, string>;
  /** entity prefixes this search allows besides attributes. */
  entities: EntityType[];
  /** whether a bare identifier (no prefix) names an attribute. */
  bareAttributes?: boolean;
}

const PREFIXES: Record<string, EntityType> = {
  metric: 'metric',
  metrics: 'metric',
  param: 'param',
  params: 'param',
  parameter: 'param',
  parameters: 'param',
  tag: 'tag',
  tags: 'tag',
  attribute: 'attribute',
  attributes: 'attribute',
  attr: 'attribute',
  run: 'attribute',
  dataset: 'dataset',
  datasets: 'dataset',
};

const NUMERIC: Comparator[] = ['=', '!=', '>', '>=', '<', '<='];
const STRING: Comparator[] = ['=', '!=', 'LIKE', 'ILIKE'];
const STRING_OR_SET: Comparator[] = ['=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'];

type Token =
  | { kind: 'ident'; text: string; quotedKey: boolean }
  | { kind: 'string'; text: string }
  | { kind: 'number'; text: string }
  | { kind: 'op'; text: string }
  | { kind: 'punct'; text: '(' | ')' | ',' };

function invalid(message: string): AppError {
  return new AppError('INVALID_INPUT', message);
}

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const readQuoted = (quote: string): string => {
    let out = '';
    i++;
    while (i < input.length) {
      const ch = input[i]!;
      if (ch === '\\' && i + 1 < input.length) {
        out += input[i + 1];
        i += 2;
        continue;
      }
      if (ch === quote) {
        if (input[i + 1] === quote) {
          out += quote;
          i += 2;
          continue;
        }
        i++;
        return out;
      }
      out += ch;
      i++;
    }
    throw invalid(`Invalid filter '${input}': unterminated quoted string`);
  };
  while (i < input.length) {
    const ch = input[i]!;
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '(' || ch === ')' || ch === ',') {
      tokens.push({ kind: 'punct', text: ch });
      i++;
    } else if (ch === "'") {
      tokens.push({ kind: 'string', text: readQuoted("'") });
    } else if (ch === '"' || ch === '`') {
      // A double-quoted token right after a prefix's dot is a key; elsewhere it is a value (MLflow accepts both).
      const prev = tokens[tokens.length - 1];
      const text = readQuoted(ch);
      if (prev?.kind === 'ident' && prev.text.endsWith('.') && !prev.quotedKey) {
        prev.text += text;
        prev.quotedKey = true;
      } else tokens.push({ kind: 'string', text });
    } else if ('<>=!'.includes(ch)) {
      const two = input.slice(i, i + 2);
      if (two === '>=' || two === '<=' || two === '!=' || two === '<>') {
        tokens.push({ kind: 'op', text: two === '<>' ? '!=' : two });
        i += 2;
      } else if (ch === '!') {
        throw invalid(`Invalid filter '${input}': unexpected '!'`);
      } else {
        tokens.push({ kind: 'op', text: ch === '=' && input[i + 1] === '=' ? (i++, '=') : ch });
        i++;
      }
    } else if (/[-+0-9.]/.test(ch) && /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.test(input.slice(i))) {
      const m = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(input.slice(i))!;
      tokens.push({ kind: 'number', text: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(ch)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_.\-/:]*)?/.exec(input.slice(i))!;
      tokens.push({ kind: 'ident', text: m[0], quotedKey: false });
      i += m[0].length;
    } else {
      throw invalid(`Invalid filter '${input}': unexpected character '${ch}'`);
    }
  }
  return tokens;
}

interface Identifier {
  type: EntityType;
  key: string;
}

function identifier(text: string, grammar: FilterGrammar, context: string): Identifier {
  const dot = text.indexOf('.');
  if (dot < 0) {
    if (!grammar.bareAttributes) throw invalid(`Invalid identifier '${text}' in ${context}: expected an entity prefix such as metrics., params., tags. or attributes.`);
    return attribute(text, grammar, context);
  }
  const prefix = text.slice(0, dot).toLowerCase();
  const key = text.slice(dot + 1);
  const type = PREFIXES[prefix];
  if (!type || (type !== 'attribute' && !grammar.entities.includes(type))) {
    const valid = ['attributes', ...grammar.entities.map((e) => `${e}s`)].join(', ');
    throw invalid(`Invalid entity type '${prefix}' in ${context}. Valid values are ${valid}`);
  }
  if (!key) throw invalid(`Invalid identifier '${text}' in ${context}: the key is empty`);
  if (type === 'attribute') return attribute(key, grammar, context);
  if (type === 'dataset' && !['name', 'digest'].includes(key)) {
    throw invalid(`Invalid dataset attribute '${key}' in ${context}. Valid values are name, digest`);
  }
  return { type, key };
}

function attribute(name: string, grammar: FilterGrammar, context: string): Identifier {
  const lower = name.toLowerCase();
  const canonical = grammar.attributeAliases?.[lower] ?? grammar.attributeAliases?.[name] ?? name;
  if (!(canonical in grammar.attributes)) {
    throw invalid(`Invalid attribute key '${name}' specified in ${context}. Valid keys are '${Object.keys(grammar.attributes).join("', '")}'`);
  }
  return { type: 'attribute', key: canonical };
}

/** Parses a filter string into AND-ed clauses; throws INVALID_INPUT (MLflow's INVALID_PARAMETER_VALUE). */
export function parseFilter(filter: string | undefined | null, grammar: FilterGrammar): FilterClause[] {
  if (!filter || !filter.trim()) return [];
  const tokens = tokenize(filter);
  const clauses: FilterClause[] = [];
  let i = 0;
  const context = `filter '${filter}'`;
  while (i < tokens.length) {
    const first = tokens[i++];
    if (!first || first.kind !== 'ident') throw invalid(`Invalid ${context}: expected an identifier at clause ${clauses.length + 1}`);
    const id = identifier(first.text, grammar, context);
    let opToken = tokens[i++];
    if (!opToken) throw invalid(`Invalid ${context}: '${first.text}' has no comparison`);
    let comparator: Comparator;
    if (opToken.kind === 'op') comparator = opToken.text as Comparator;
    else if (opToken.kind === 'ident' && ['like', 'ilike', 'in'].includes(opToken.text.toLowerCase())) comparator = opToken.text.toUpperCase() as Comparator;
    else if (opToken.kind === 'ident' && opToken.text.toLowerCase() === 'not' && tokens[i]?.kind === 'ident' && (tokens[i] as { text: string }).text.toLowerCase() === 'in') {
      i++;
      comparator = 'NOT IN';
    } else throw invalid(`Invalid ${context}: unexpected '${opToken.text}' after '${first.text}'`);

    const kind = valueKind(id, grammar);
    const allowed = kind === 'number' ? NUMERIC : id.type === 'param' || id.type === 'tag' ? STRING : STRING_OR_SET;
    if (!allowed.includes(comparator)) {
      throw invalid(`Invalid comparator '${comparator}' not one of '${JSON.stringify(allowed)}' for ${describeType(id)} '${id.key}'`);
    }
    let value: FilterClause['value'];
    if (comparator === 'IN' || comparator === 'NOT IN') {
      if (tokens[i]?.kind !== 'punct' || tokens[i]!.text !== '(') throw invalid(`Invalid ${context}: ${comparator} needs a parenthesised list`);
      i++;
      const list: string[] = [];
      for (;;) {
        const t = tokens[i++];
        if (!t || (t.kind !== 'string' && t.kind !== 'number')) throw invalid(`Invalid ${context}: ${comparator} list must hold quoted strings`);
        list.push(t.text);
        const sep = tokens[i++];
        if (sep?.kind === 'punct' && sep.text === ')') break;
        if (!(sep?.kind === 'punct' && sep.text === ',')) throw invalid(`Invalid ${context}: ${comparator} list is not closed`);
      }
      value = list;
    } else {
      opToken = tokens[i++];
      if (!opToken) throw invalid(`Invalid ${context}: '${first.text} ${comparator}' has no value`);
      if (kind === 'number') {
        if (opToken.kind !== 'number') throw invalid(`Expected numeric value type for ${describeType(id)} '${id.key}'. Found ${opToken.text}`);
        value = Number(opToken.text);
      } else {
        if (opToken.kind !== 'string') throw invalid(`Expected a quoted string value for ${describeType(id)} '${id.key}'. Got value ${opToken.text}`);
        value = opToken.text;
      }
    }
    clauses.push({ type: id.type, key: id.key, comparator, value });
    const next = tokens[i];
    if (!next) break;
    if (next.kind === 'ident' && next.text.toLowerCase() === 'and') {
      i++;
      if (i >= tokens.length) throw invalid(`Invalid ${context}: trailing AND`);
      continue;
    }
    if (next.kind === 'ident' && next.text.toLowerCase() === 'or') throw invalid(`Invalid ${context}: OR is not supported; only AND-ed clauses are`);
    throw invalid(`Invalid ${context}: expected AND, found '${next.text}'`);
  }
  return clauses;
}

function valueKind(id: Identifier, grammar: FilterGrammar): 'number' | 'string' {
  if (id.type === 'metric') return 'number';
  if (id.type === 'attribute') return grammar.attributes[id.key] ?? 'string';
  return 'string';
}

function describeType(id: Identifier): string {
  return id.type === 'attribute' ? 'attribute' : id.type;
}

/** Parses order_by terms such as `metrics.auc DESC`, `attributes.start_time`, `params.lr ASC`. */
export function parseOrderBy(terms: readonly string[] | undefined, grammar: FilterGrammar): OrderClause[] {
  const out: OrderClause[] = [];
  for (const raw of terms ?? []) {
    const term = raw.trim();
    if (!term) continue;
    const m = /^(.*?)(?:\s+(ASC|DESC))?$/i.exec(term)!;
    const tokens = tokenize(m[1]!.trim());
    if (tokens.length !== 1 || tokens[0]!.kind !== 'ident') throw invalid(`Invalid order_by clause '${raw}'. Could not be parsed.`);
    const id = identifier(tokens[0]!.text, { ...grammar, bareAttributes: true }, `order_by clause '${raw}'`);
    if (id.type === 'dataset') throw invalid(`Invalid order_by clause '${raw}': datasets cannot be ordered by`);
    out.push({ type: id.type, key: id.key, ascending: (m[2] ?? 'ASC').toUpperCase() === 'ASC' });
  }
  return out;
}

/** The run search grammar (MLflow's attributes for runs). */
export const RUN_GRAMMAR: FilterGrammar = {
  attributes: {
    run_id: 'string',
    run_name: 'string',
    status: 'string',
    user_id: 'string',
    artifact_uri: 'string',
    lifecycle_stage: 'string',
    start_time: 'number',
    end_time: 'number',
  },
  attributeAliases: { created: 'start_time', run_uuid: 'run_id', 'run name': 'run_name', runname: 'run_name' },
  entities: ['metric', 'param', 'tag', 'dataset'],
  bareAttributes: true,
};

export const EXPERIMENT_GRAMMAR: FilterGrammar = {
  attributes: { name: 'string', experiment_id: 'string', creation_time: 'number', last_update_time: 'number', lifecycle_stage: 'string' },
  entities: ['tag'],
  bareAttributes: true,
};

export const REGISTERED_MODEL_GRAMMAR: FilterGrammar = {
  attributes: { name: 'string', creation_timestamp: 'number', last_updated_timestamp: 'number' },
  attributeAliases: { timestamp: 'last_updated_timestamp' },
  entities: ['tag'],
  bareAttributes: true,
};

export const MODEL_VERSION_GRAMMAR: FilterGrammar = {
  attributes: {
    name: 'string',
    run_id: 'string',
    source: 'string',
    version_number: 'number',
    current_stage: 'string',
    creation_timestamp: 'number',
    last_updated_timestamp: 'number',
  },
  attributeAliases: { source_path: 'source', version: 'version_number' },
  entities: ['tag'],
  bareAttributes: true,
};
