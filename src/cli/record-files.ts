/**
 * `files.group` of the resolved config, applied to the files this command
 * creates (src/store/files.ts): a group that does not exist here is a config
 * error naming where it was set.
 */
import { lookupGroup, setRecordGroup } from '../store/files.js';
import { InputError, shown } from './errors.js';

export function applyRecordGroup(group: string | null, source: string): void {
  if (group === null) {
    setRecordGroup(null);
    return;
  }
  const gid = lookupGroup(group);
  if (gid === null) {
    throw new InputError('config.invalid', `files.group (${source})`, `no group ${shown(group)} on this host`, { hint: 'create it (groupadd NAME) or give a numeric gid' });
  }
  setRecordGroup({ name: group, gid });
}
