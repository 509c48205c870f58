// rig/quecthing: QuecThing commands and +QIOTEVT events on top of an AtPort (docs/protocol.md).
//
//   const qt = new QuecThing(port);
//   await qt.setProductInfo(pk, ps); await qt.register(1); await qt.state();   // { state: 8, name: 'subscribed' }
//   await qt.setMcuVersion('STM32', '1_0_0'); await qt.mcuVersions(); await qt.mcuVersion('STM32');
//   const events = qt.events();                       // arm BEFORE sending: buffers from now on
//   await qt.otaRequest({ sha256: true });            // AT+QIOTOTAREQ=1
//   const plan = await events.next(isEvent('ota-plan'), { timeoutMs, signal, failOn: isEvent('ota-failed') });
//   await qt.otaUpdate(UpdateAction.confirm);         // then 10701, 10702…, 10703 on the same cursor
//   const { start, data } = await qt.otaRead(0, 1024);
//   qt.on('event', (e: ModuleEvent) => …)            // every URC decoded; unknown ones kept as such
// Also: at, setEcho, identify (ATI), firmwareRevision (AT+QGMR), imei (AT+GSN), setFunctionality /
// functionality (AT+CFUN), signalQuality (AT+CSQ), productInfo, setDeviceKey/deviceKey (dk_ds),
// setServer/server, registration, info. ProductSecret and DeviceSecret are masked on the port once seen.
// `parseQiotEvent(line)` decodes one +QIOTEVT line into the QiotEvent union (discriminant `kind`).
export { QuecThing, UpdateAction, QIOT_STATES } from './quecthing.ts';
export type { DeviceKey, McuVersion, OtaBlock, ProductInfo, QiotState, QuecThingEvents, QuecThingOptions, RegistrationMode } from './quecthing.ts';
export { EventCursor, EventFailedError, EventTimeoutError } from './cursor.ts';
export type { CursorSource, WaitOptions } from './cursor.ts';
export { isEvent, parseModuleEvent, parseQiotEvent } from './events.ts';
export type * from './events.ts';
export { afterPrefix, fieldValue, fieldValues, quote, splitFields } from './fields.ts';
export type { Field, FieldValue } from './fields.ts';
