package ec2emu

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// EBS volumes and snapshots: enough for the forensic snapshots a
// quarantine takes first (remediate/awsec2/snapshot.go). DescribeInstances
// lists an instance's volumes in its blockDeviceMapping; CreateSnapshot and
// DescribeSnapshots serve the snapshots, with tags on creation, tag
// filters, paging and DryRun.

// Volume is an EBS volume, attached to InstanceID when that is set.
type Volume struct {
	ID         string
	InstanceID string
	Device     string // "" means "/dev/xvda"
	SizeGiB    int32  // 0 means 8
	Encrypted  bool
}

// Snapshot is an EBS snapshot made by CreateSnapshot. The fake's
// snapshots complete at once: CreateSnapshot answers "pending", as AWS
// does, and DescribeSnapshots then shows State "completed".
type Snapshot struct {
	ID, VolumeID, Description string
	State                     string
	VolumeSize                int32
	Encrypted                 bool
	StartTime                 time.Time
	Tags                      map[string]string
}

// snapState is the volumes and snapshots; guarded by EC2Fake.mu.
type snapState struct {
	volumes   []Volume
	snapshots []Snapshot
	nextID    int
}

// AddVolume adds EBS volumes.
func (f *EC2Fake) AddVolume(v ...Volume) {
	f.locked(func() { f.snap.volumes = append(f.snap.volumes, v...) })
}

// Snapshots returns copies of the snapshots made so far, in order.
func (f *EC2Fake) Snapshots() []Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Snapshot, len(f.snap.snapshots))
	for i, s := range f.snap.snapshots {
		out[i] = s
		out[i].Tags = maps.Clone(s.Tags)
	}
	return out
}

// snapshotHandler returns the handler of a volume or snapshot call, or nil.
func (f *EC2Fake) snapshotHandler(action string) func(Call) (any, error) {
	return map[string]func(Call) (any, error){
		"CreateSnapshot":    f.createSnapshot,
		"DescribeSnapshots": f.describeSnapshots,
	}[action]
}

type xmlEBS struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlBlockDevice struct {
	DeviceName string `xml:"deviceName"`
	EBS        xmlEBS `xml:"ebs"`
}

type xmlSnapshot struct {
	ID          string   `xml:"snapshotId"`
	VolumeID    string   `xml:"volumeId"`
	Status      string   `xml:"status"`
	StartTime   string   `xml:"startTime"`
	Progress    string   `xml:"progress"`
	OwnerID     string   `xml:"ownerId"`
	VolumeSize  int32    `xml:"volumeSize"`
	Description string   `xml:"description"`
	Encrypted   bool     `xml:"encrypted"`
	Tags        []xmlTag `xml:"tagSet>item"`
}

// xmlBlockDevices is the blockDeviceMapping of an instance: its volumes.
func (f *EC2Fake) xmlBlockDevices(instanceID string) []xmlBlockDevice {
	var out []xmlBlockDevice
	for _, v := range f.snap.volumes {
		if v.InstanceID == instanceID {
			out = append(out, xmlBlockDevice{DeviceName: deviceName(v),
				EBS: xmlEBS{VolumeID: v.ID, Status: "attached", DeleteOnTermination: true}})
		}
	}
	return out
}

func deviceName(v Volume) string {
	if v.Device == "" {
		return "/dev/xvda"
	}
	return v.Device
}

func xmlSnapshotOf(s Snapshot, status string) xmlSnapshot {
	x := xmlSnapshot{ID: s.ID, VolumeID: s.VolumeID, Status: status, StartTime: s.StartTime.UTC().Format(time.RFC3339),
		Progress: "100%", OwnerID: AccountID, VolumeSize: s.VolumeSize, Description: s.Description, Encrypted: s.Encrypted}
	if status == "pending" {
		x.Progress = "0%"
	}
	for _, k := range sortedKeys(s.Tags) {
		x.Tags = append(x.Tags, xmlTag{Key: k, Value: s.Tags[k]})
	}
	return x
}

// createSnapshot snapshots a volume, with the tags of its
// TagSpecifications, which must be for ResourceType snapshot.
func (f *EC2Fake) createSnapshot(c Call) (any, error) {
	p := c.Params
	id := p.Get("VolumeId")
	if id == "" {
		return nil, errorf(400, "MissingParameter", "The request must contain the parameter VolumeId")
	}
	i := slices.IndexFunc(f.snap.volumes, func(v Volume) bool { return v.ID == id })
	if i < 0 {
		return nil, errorf(400, "InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
	}
	tags := map[string]string{}
	for n := 1; p.Has(fmt.Sprintf("TagSpecification.%d.ResourceType", n)); n++ {
		if rt := p.Get(fmt.Sprintf("TagSpecification.%d.ResourceType", n)); rt != "snapshot" {
			return nil, errorf(400, "InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		for _, kv := range tagList(p, fmt.Sprintf("TagSpecification.%d.", n)) {
			if strings.HasPrefix(kv[0], "aws:") {
				return nil, errorf(400, "InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
			}
			tags[kv[0]] = kv[1]
		}
	}
	if err := dryRun(c); err != nil {
		return nil, err
	}
	v := f.snap.volumes[i]
	size := v.SizeGiB
	if size == 0 {
		size = 8
	}
	f.snap.nextID++
	s := Snapshot{ID: fmt.Sprintf("snap-fake%04d", f.snap.nextID), VolumeID: v.ID, Description: p.Get("Description"),
		State: "completed", VolumeSize: size, Encrypted: v.Encrypted, StartTime: time.Now().UTC().Truncate(time.Second), Tags: tags}
	f.snap.snapshots = append(f.snap.snapshots, s)
	return xmlSnapshotOf(s, "pending"), nil
}

// describeSnapshots serves SnapshotId.N, Owner.N (the SDK's OwnerIds:
// "self" or the account, since every snapshot of the fake is the
// account's; any other owner has none) and the filters
// snapshot-id, volume-id, status, owner-id, description, tag-key and tag:K.
func (f *EC2Fake) describeSnapshots(c Call) (any, error) {
	for _, o := range list(c.Params, "Owner") {
		if o != "self" && o != AccountID {
			return struct {
				Snapshots []xmlSnapshot `xml:"snapshotSet>item"`
			}{}, nil // someone else's: the fake has none
		}
	}
	has := func(s Snapshot, name string) ([]string, bool) {
		if key, ok := strings.CutPrefix(name, "tag:"); ok {
			v, set := s.Tags[key]
			if !set {
				return nil, true
			}
			return []string{v}, true
		}
		switch name {
		case "snapshot-id":
			return one(s.ID), true
		case "volume-id":
			return one(s.VolumeID), true
		case "status":
			return one(s.State), true
		case "owner-id":
			return one(AccountID), true
		case "description":
			return one(s.Description), true
		case "tag-key":
			return sortedKeys(s.Tags), true
		}
		return nil, false
	}
	conv := func(s Snapshot) xmlSnapshot { return xmlSnapshotOf(s, s.State) }
	out, next, err := describe(f, c, f.snap.snapshots, list(c.Params, "SnapshotId"), func(s Snapshot) string { return s.ID },
		"InvalidSnapshot.NotFound", has, conv, true)
	if err != nil {
		return nil, err
	}
	return struct {
		Snapshots []xmlSnapshot `xml:"snapshotSet>item"`
		NextToken string        `xml:"nextToken,omitempty"`
	}{out, next}, nil
}
