package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Instance is what Resolve learned. An unknown or terminated instance is
// a finding (Found=false, or State "terminated"; Note says which), not an
// error.
type Instance struct {
	Query           string            `json:"query"` // the instance id or address looked up
	Found           bool              `json:"found"`
	Note            string            `json:"note,omitempty"`
	InstanceID      string            `json:"instance_id"`
	Region          string            `json:"region"`
	State           string            `json:"state"`
	Tags            map[string]string `json:"tags"`
	LaunchTime      *time.Time        `json:"launch_time"`
	VPCID           string            `json:"vpc_id"`
	SubnetID        string            `json:"subnet_id"`
	NetworkACL      *NetworkACL       `json:"network_acl"` // the subnet's: its explicit association, else the VPC default
	SecurityGroups  []SecurityGroup   `json:"security_groups"`
	ENIs            []ENI             `json:"enis"`
	PublicIPs       []string          `json:"public_ips"`
	InstanceProfile string            `json:"instance_profile"` // the profile's ARN, or ""
	SSMManaged      *bool             `json:"ssm_managed"`      // nil when unknown: the call failed or was denied
	ResolvedBy      string            `json:"resolved_by"`      // one of the ResolvedBy constants
}

// How Resolve found the instance, in the order it tries them.
const (
	ResolvedByInstanceID     = "instance-id"     // DescribeInstances by id
	ResolvedByENIAssociation = "eni-association" // an ENI whose association.public-ip is the address
	ResolvedByAddress        = "address"         // an Elastic IP associated with the instance
	ResolvedByInstanceIP     = "instance-ip"     // DescribeInstances filter ip-address
)

// Resolve finds the instance by instanceID when given, else by publicIP,
// and gathers its network ACL, security groups, interfaces and SSM
// status. An address is looked up, in order, as an ENI's
// association.public-ip (moto lacks this filter: an empty or failed answer
// moves on), an Elastic IP, and an instance's ip-address.
//
// On error the returned Instance still holds what was learned before the
// failure; callers may report it as partial. SSM failing only leaves
// SSMManaged nil.
func (c *Clients) Resolve(ctx context.Context, instanceID string, publicIP netip.Addr) (Instance, error) {
	inst := Instance{Region: c.Region}
	var found *types.Instance
	switch {
	case instanceID != "":
		inst.Query = instanceID
		in, err := c.instanceByID(ctx, instanceID)
		if err != nil {
			return inst, err
		}
		if in == nil {
			inst.Note = fmt.Sprintf("no instance %s in %s", instanceID, c.Region)
			return inst, nil
		}
		found, inst.ResolvedBy = in, ResolvedByInstanceID
	case publicIP.IsValid():
		inst.Query = publicIP.String()
		in, by, note, err := c.instanceByIP(ctx, publicIP)
		if err != nil {
			return inst, err
		}
		if in == nil {
			inst.Note = note
			return inst, nil
		}
		found, inst.ResolvedBy = in, by
	default:
		return inst, errors.New("resolve: neither an instance id nor an address to look up")
	}

	inst.fill(found)
	if inst.State == string(types.InstanceStateNameTerminated) {
		// Its interfaces are gone; there is nothing left to inspect or block.
		inst.Note = "terminated"
		return inst, nil
	}
	err := c.gather(ctx, &inst, found)
	if instanceID != "" && publicIP.IsValid() && !slices.Contains(inst.PublicIPs, publicIP.String()) {
		inst.addNote(fmt.Sprintf("%s does not hold %s now: the address may have changed hands", inst.InstanceID, publicIP))
	}
	return inst, err
}

// instanceByID returns the instance, or nil when AWS does not know it.
func (c *Clients) instanceByID(ctx context.Context, id string) (*types.Instance, error) {
	in, err := c.firstInstance(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe instance %s in %s: %w", id, c.Region, err)
	}
	return in, nil
}

// firstInstance follows the pages of a DescribeInstances call until one
// holds an instance: with filters, AWS may answer empty pages first.
func (c *Clients) firstInstance(ctx context.Context, input *ec2.DescribeInstancesInput) (*types.Instance, error) {
	p := ec2.NewDescribeInstancesPaginator(c.EC2, input)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range out.Reservations {
			if len(r.Instances) > 0 {
				return &r.Instances[0], nil
			}
		}
	}
	return nil, nil
}

// instanceByIP tries the three lookups in order. When none finds an
// instance it returns a note saying why. A failed interface lookup only
// moves on (moto lacks its filter; the other two lookups cover the usual
// addresses) and is mentioned in the note; a failure of the other two is
// an error, since it may hide the answer.
func (c *Clients) instanceByIP(ctx context.Context, ip netip.Addr) (*types.Instance, string, string, error) {
	addr := ip.String()
	var errs []error

	enis, eniErr := c.interfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: filter("association.public-ip", addr)}, 1)
	switch {
	case ctx.Err() != nil:
		return nil, "", "", ctx.Err()
	case eniErr == nil && len(enis) > 0:
		e := enis[0]
		if e.Attachment == nil || aws.ToString(e.Attachment.InstanceId) == "" {
			return nil, "", notInstance(addr, e), nil
		}
		if in, err := c.instanceByID(ctx, aws.ToString(e.Attachment.InstanceId)); err != nil || in != nil {
			return in, ResolvedByENIAssociation, "", err
		}
	}

	addrs, err := c.EC2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{Filters: filter("public-ip", addr)})
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("describe address %s: %w", addr, err))
	case len(addrs.Addresses) > 0:
		a := addrs.Addresses[0]
		if id := aws.ToString(a.InstanceId); id != "" {
			if in, err := c.instanceByID(ctx, id); err != nil || in != nil {
				return in, ResolvedByAddress, "", err
			}
		} else {
			return nil, "", fmt.Sprintf("%s is this account's Elastic IP %s, associated with no instance (interface %q)",
				addr, aws.ToString(a.AllocationId), aws.ToString(a.NetworkInterfaceId)), nil
		}
	}

	in, err := c.firstInstance(ctx, &ec2.DescribeInstancesInput{Filters: filter("ip-address", addr)})
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("describe instances with ip-address %s: %w", addr, err))
	case in != nil:
		return in, ResolvedByInstanceIP, "", nil
	}
	if len(errs) > 0 {
		return nil, "", "", fmt.Errorf("resolve %s in %s: %w", addr, c.Region, errors.Join(errs...))
	}
	note := fmt.Sprintf("no instance has %s now: the address may have changed hands", addr)
	if eniErr != nil {
		note += fmt.Sprintf(" (the lookup by interface association failed: %v)", eniErr)
	}
	return nil, "", note, nil
}

// notInstance describes an address held by an interface that no instance
// owns: a NAT gateway, load balancer or Lambda, say.
func notInstance(addr string, e types.NetworkInterface) string {
	return fmt.Sprintf("%s belongs to network interface %s (type %s, %q), not to an instance",
		addr, aws.ToString(e.NetworkInterfaceId), e.InterfaceType, aws.ToString(e.Description))
}

// interfaces follows DescribeNetworkInterfaces pages, stopping once it
// has at least limit interfaces (0: read them all).
func (c *Clients) interfaces(ctx context.Context, input *ec2.DescribeNetworkInterfacesInput, limit int) ([]types.NetworkInterface, error) {
	var all []types.NetworkInterface
	p := ec2.NewDescribeNetworkInterfacesPaginator(c.EC2, input)
	for p.HasMorePages() && (limit == 0 || len(all) < limit) {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		all = append(all, out.NetworkInterfaces...)
	}
	return all, nil
}

func filter(name string, values ...string) []types.Filter {
	return []types.Filter{{Name: aws.String(name), Values: values}}
}

func (i *Instance) addNote(s string) {
	if i.Note != "" {
		i.Note += "; "
	}
	i.Note += s
}
