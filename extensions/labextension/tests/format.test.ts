import { describe, expect, it } from 'vitest';

import {
  executedNotebookPath,
  formatDatasets,
  formatDuration,
  formatMetrics,
  formatNumber,
  formatParams,
  gpuLabel,
  isTerminal,
  outputPath,
  parseDatasets,
  parseMaxRuntime,
  parseParams,
  parseParamValue,
  stateClass,
  toRunDatasets
} from '../src/format';
import { IJob } from '../src/types';

const job = (over: Partial<IJob> = {}): IJob => ({ id: 'alice/proj/12', number: 12, state: 'running', ...over });

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [42.7, '42s'],
    [60, '1m 0s'],
    [125, '2m 5s'],
    [3725, '1h 2m 5s'],
    [90061, '1d 1h 1m']
  ])('%s s → %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it.each([null, undefined, -1, NaN, Infinity])('%s → —', value => {
    expect(formatDuration(value as number)).toBe('—');
  });
});

describe('states', () => {
  it('gives one badge class per state', () => {
    expect(stateClass('running')).toBe('floyd-JobState floyd-JobState-running');
    expect(stateClass('timed_out')).toBe('floyd-JobState floyd-JobState-timed-out');
    expect(stateClass('something-new')).toBe('floyd-JobState floyd-JobState-unknown');
  });

  it('knows the terminal states', () => {
    for (const s of ['succeeded', 'failed', 'stopped', 'timed_out', 'lost']) {
      expect(isTerminal(s)).toBe(true);
    }
    for (const s of ['queued', 'starting', 'running']) {
      expect(isTerminal(s)).toBe(false);
    }
  });

  it('labels resources', () => {
    expect(gpuLabel(job())).toBe('CPU');
    expect(gpuLabel(job({ resources: { gpus: 0 } }))).toBe('CPU');
    expect(gpuLabel(job({ resources: { gpus: 1 } }))).toBe('1 GPU');
    expect(gpuLabel(job({ resources: { gpus: 2 } }))).toBe('2 GPUs');
  });
});

describe('metrics text', () => {
  it('sorts and rounds', () => {
    expect(formatMetrics({ loss: 0.123456, acc: 0.9, step: 100 })).toBe('acc=0.9 loss=0.1235 step=100');
    expect(formatMetrics(null)).toBe('');
    expect(formatNumber(0.00001234)).toBe('1.234e-5');
    expect(formatNumber(12345678.9)).toBe('1.235e+7');
  });
});

describe('datasets', () => {
  it('parses ref:mount lines', () => {
    expect(
      parseDatasets('alice/mnist:3:mnist\n\n  bob/imagenet:train  \n# comment\nalice/cifar:2\nalice/plain')
    ).toEqual([
      { ref: 'alice/mnist:3', mount: 'mnist' },
      { ref: 'bob/imagenet', mount: 'train' },
      { ref: 'alice/cifar:2' },
      { ref: 'alice/plain' }
    ]);
  });

  it('follows the server grammar for versions and job outputs', () => {
    expect(parseDatasets('mnist:latest\nmnist:3:7\nalice/proj/12/output:prev\n12/output')).toEqual([
      { ref: 'mnist:latest' },
      { ref: 'mnist:3', mount: '7' },
      { ref: 'alice/proj/12/output', mount: 'prev' },
      { ref: '12/output' }
    ]);
  });

  it('sends source and mount to the server', () => {
    expect(toRunDatasets(parseDatasets('alice/mnist:3:digits\nalice/cifar:2'))).toEqual([
      { source: 'alice/mnist:3', ref: 'alice/mnist:3', mount: 'digits' },
      { source: 'alice/cifar:2', ref: 'alice/cifar:2' }
    ]);
  });

  it('names an untraced mount by its mount', () => {
    expect(formatDatasets([{ ref: null, mount: 'scratch' }, { ref: 'a/b:1', mount: 'b' }])).toBe('scratch\na/b:1:b');
  });

  it('reads a trailing colon as no mount and refuses an empty ref', () => {
    expect(parseDatasets('alice/mnist:3:')).toEqual([{ ref: 'alice/mnist:3' }]);
    expect(() => parseDatasets(':mnist')).toThrow(/no dataset/);
  });

  it('round-trips the defaults', () => {
    const ds = [{ ref: 'alice/mnist:3', mount: 'mnist' }, { ref: 'alice/cifar:1' }];
    expect(formatDatasets(ds)).toBe('alice/mnist:3:mnist\nalice/cifar:1');
    expect(parseDatasets(formatDatasets(ds))).toEqual(ds);
    expect(formatDatasets(undefined)).toBe('');
  });
});

describe('parameters', () => {
  it('reads Python-ish values', () => {
    expect(parseParamValue('1')).toBe(1);
    expect(parseParamValue(' 0.5 ')).toBe(0.5);
    expect(parseParamValue('True')).toBe(true);
    expect(parseParamValue('false')).toBe(false);
    expect(parseParamValue('None')).toBeNull();
    expect(parseParamValue("'adam'")).toBe('adam');
    expect(parseParamValue('"adam"')).toBe('adam');
    expect(parseParamValue('[1, 2]')).toEqual([1, 2]);
    expect(parseParamValue('adam')).toBe('adam');
  });

  it('parses name = value lines', () => {
    expect(parseParams('lr = 0.01\nepochs: 10\n# note\n\noptimizer = adam\nname = "1"')).toEqual({
      lr: 0.01,
      epochs: 10,
      optimizer: 'adam',
      name: '1'
    });
  });

  it('refuses lines that are not assignments', () => {
    expect(() => parseParams('just text')).toThrow(/not "name = value"/);
    expect(() => parseParams('bad name = 1')).toThrow(/Python identifier/);
  });

  it('prefills from the defaults and reads them back unchanged', () => {
    const params = { lr: 0.01, epochs: 10, optimizer: 'adam', tag: '42', flag: true, layers: [64, 32], none: null };
    const text = formatParams(params);
    expect(text).toBe('lr = 0.01\nepochs = 10\noptimizer = adam\ntag = "42"\nflag = true\nlayers = [64,32]\nnone = null');
    expect(parseParams(text)).toEqual(params);
    expect(formatParams(undefined)).toBe('');
  });
});

describe('max runtime', () => {
  it.each([
    ['', undefined],
    ['90', 5400],
    ['1.5', 90],
    ['2h', 7200],
    ['1h30m', 5400],
    ['45m', 2700],
    ['300s', 300],
    ['1d', 86400]
  ])('%j → %s', (text, seconds) => {
    expect(parseMaxRuntime(text)).toBe(seconds);
  });

  it('refuses other text', () => {
    expect(() => parseMaxRuntime('soon')).toThrow(/Max runtime/);
  });
});

describe('output paths', () => {
  it('points at the job output under the server root', () => {
    expect(outputPath(job())).toBe('jobs/12/output');
    expect(executedNotebookPath(job({ path: 'code/train.ipynb' }))).toBe('jobs/12/output/train.ipynb');
    expect(executedNotebookPath(job({ path: 'train.py' }))).toBeNull();
    expect(executedNotebookPath(job())).toBeNull();
  });
});
