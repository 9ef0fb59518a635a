# -*- coding: utf-8 -*-
# Copyright: virtops.kubevirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The spec schema of KubeVirt v1.8.4's instancetype.kubevirt.io/v1beta1 kinds as key trees, to name an
unknown key of a spec before it is written (the API server would drop it, or refuse it).

SPEC[kind] is {key: subtree}; ANY marks a leaf or a free-form map. Taken from KubeVirt's CRDs
(pkg/virt-operator/resource/generate/components/validations_generated.go, as committed in lab/crds/);
tests/unit/plugins/module_utils/kubevirt/test_instancetype_schema.py checks that they still agree.
"""

from __future__ import annotations

ANY = None

SPEC = {
    'instancetype': {'annotations': ANY,
                     'cpu': {'dedicatedCPUPlacement': ANY,
                             'guest': ANY,
                             'isolateEmulatorThread': ANY,
                             'maxSockets': ANY,
                             'model': ANY,
                             'numa': {'guestMappingPassthrough': ANY},
                             'realtime': {'mask': ANY}},
                     'gpus': {'claimName': ANY,
                              'deviceName': ANY,
                              'name': ANY,
                              'requestName': ANY,
                              'tag': ANY,
                              'virtualGPUOptions': {'display': {'enabled': ANY, 'ramFB': {'enabled': ANY}}}},
                     'hostDevices': {'claimName': ANY,
                                     'deviceName': ANY,
                                     'name': ANY,
                                     'requestName': ANY,
                                     'tag': ANY},
                     'ioThreads': {'supplementalPoolThreadCount': ANY},
                     'ioThreadsPolicy': ANY,
                     'launchSecurity': {'sev': {'attestation': ANY,
                                                'dhCert': ANY,
                                                'policy': {'encryptedState': ANY},
                                                'session': ANY},
                                        'snp': ANY,
                                        'tdx': ANY},
                     'memory': {'guest': ANY,
                                'hugepages': {'pageSize': ANY},
                                'maxGuest': ANY,
                                'overcommitPercent': ANY},
                     'nodeSelector': ANY,
                     'schedulerName': ANY},
    'preference': {'annotations': ANY,
                   'clock': {'preferredClockOffset': {'timezone': ANY, 'utc': {'offsetSeconds': ANY}},
                             'preferredTimer': {'hpet': {'present': ANY, 'tickPolicy': ANY},
                                                'hyperv': {'present': ANY},
                                                'kvm': {'present': ANY},
                                                'pit': {'present': ANY, 'tickPolicy': ANY},
                                                'rtc': {'present': ANY, 'tickPolicy': ANY, 'track': ANY}}},
                   'cpu': {'preferredCPUFeatures': {'name': ANY, 'policy': ANY},
                           'preferredCPUTopology': ANY,
                           'spreadOptions': {'across': ANY, 'ratio': ANY}},
                   'devices': {'preferredAutoattachGraphicsDevice': ANY,
                               'preferredAutoattachInputDevice': ANY,
                               'preferredAutoattachMemBalloon': ANY,
                               'preferredAutoattachPodInterface': ANY,
                               'preferredAutoattachSerialConsole': ANY,
                               'preferredBlockMultiQueue': ANY,
                               'preferredCdromBus': ANY,
                               'preferredDisableHotplug': ANY,
                               'preferredDiskBlockSize': {'custom': {'discardGranularity': ANY,
                                                                     'logical': ANY,
                                                                     'physical': ANY},
                                                          'matchVolume': {'enabled': ANY}},
                               'preferredDiskBus': ANY,
                               'preferredDiskCache': ANY,
                               'preferredDiskDedicatedIoThread': ANY,
                               'preferredDiskIO': ANY,
                               'preferredInputBus': ANY,
                               'preferredInputType': ANY,
                               'preferredInterfaceMasquerade': ANY,
                               'preferredInterfaceModel': ANY,
                               'preferredLunBus': ANY,
                               'preferredNetworkInterfaceMultiQueue': ANY,
                               'preferredPanicDeviceModel': ANY,
                               'preferredRng': ANY,
                               'preferredSoundModel': ANY,
                               'preferredTPM': {'enabled': ANY, 'persistent': ANY},
                               'preferredUseVirtioTransitional': ANY,
                               'preferredVirtualGPUOptions': {'display': {'enabled': ANY,
                                                                          'ramFB': {'enabled': ANY}}}},
                   'features': {'preferredAcpi': {'enabled': ANY},
                                'preferredApic': {'enabled': ANY, 'endOfInterrupt': ANY},
                                'preferredHyperv': {'evmcs': {'enabled': ANY},
                                                    'frequencies': {'enabled': ANY},
                                                    'ipi': {'enabled': ANY},
                                                    'reenlightenment': {'enabled': ANY},
                                                    'relaxed': {'enabled': ANY},
                                                    'reset': {'enabled': ANY},
                                                    'runtime': {'enabled': ANY},
                                                    'spinlocks': {'enabled': ANY, 'spinlocks': ANY},
                                                    'synic': {'enabled': ANY},
                                                    'synictimer': {'direct': {'enabled': ANY}, 'enabled': ANY},
                                                    'tlbflush': {'direct': {'enabled': ANY},
                                                                 'enabled': ANY,
                                                                 'extended': {'enabled': ANY}},
                                                    'vapic': {'enabled': ANY},
                                                    'vendorid': {'enabled': ANY, 'vendorid': ANY},
                                                    'vpindex': {'enabled': ANY}},
                                'preferredKvm': {'hidden': ANY},
                                'preferredPvspinlock': {'enabled': ANY},
                                'preferredSmm': {'enabled': ANY}},
                   'firmware': {'preferredEfi': {'persistent': ANY, 'secureBoot': ANY},
                                'preferredUseBios': ANY,
                                'preferredUseBiosSerial': ANY,
                                'preferredUseEfi': ANY,
                                'preferredUseSecureBoot': ANY},
                   'machine': {'preferredMachineType': ANY},
                   'preferSpreadSocketToCoreRatio': ANY,
                   'preferredArchitecture': ANY,
                   'preferredSubdomain': ANY,
                   'preferredTerminationGracePeriodSeconds': ANY,
                   'requirements': {'architecture': ANY, 'cpu': {'guest': ANY}, 'memory': {'guest': ANY}},
                   'volumes': {'preferredStorageClassName': ANY}}
}


def unknown_keys(kind, spec):
    """The paths of the keys of ``spec`` that the ``kind`` ('instancetype' or 'preference') spec schema does
    not have, e.g. ['cpu.sockets', 'gpus[0].color']."""
    return _unknown(spec, SPEC[kind], "")


def _unknown(value, tree, path):
    if tree is ANY:
        return []
    if isinstance(value, list):
        out = []
        for n, item in enumerate(value):
            out += _unknown(item, tree, "%s[%d]" % (path, n))
        return out
    if not isinstance(value, dict):
        return ["%s (must be a mapping)" % path]
    out = []
    for key, sub in value.items():
        where = "%s.%s" % (path, key) if path else str(key)
        out += [where] if key not in tree else _unknown(sub, tree[key], where)
    return out
